//! acmegate issuer connector for an upstream ACME CA (RFC 8555), over the gateway's `http`
//! capability: acmegate validates its own clients, then this connector obtains the
//! certificate from the upstream with its own account (optionally bound with EAB) and
//! forwards revocations.
//!
//! The upstream must authorize the connector's account for the names (an ACME proxy or CA
//! that trusts this RA, e.g. through EAB with pre-authorized names; or Pebble with its VA off
//! in tests): the connector answers `http-01` on each pending authorization and waits for the
//! upstream's decision, it does not serve challenge responses itself.
//!
//! Configuration (JSON): `directory` (URL), optional `contact` (list of `mailto:` URLs).
//! Secrets (grants): `account_key` (base64url of a 32-byte P-256 private scalar, e.g.
//! `openssl rand 32 | basenc --base64url`), and for EAB `eab_kid` and `eab_hmac_key`.
//!
//! Each call is a fresh instance, so nothing is cached between calls: `issue` creates (or
//! finds, RFC 8555 §7.3.1) the account, places the order and answers `pending` with a handle
//! holding the order URL and the CSR; `poll` finalizes when the order is ready and returns the
//! chain when it is valid. Every step is idempotent, so a retry or a gateway restart only asks
//! again.

mod jws;

use acmegate_plugin_sdk::issuer::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::SigningKey;
use serde::Deserialize;
use serde_json::{json, Value};

/// Per HTTP request; the plugin's wall-clock limit bounds the whole call.
const HTTP_TIMEOUT_MS: u32 = 10_000;
/// How long the gateway waits before polling an order the upstream is still working on.
const POLL_AFTER_SECS: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    directory: String,
    #[serde(default)]
    contact: Vec<String>,
}

struct Upstream {
    config: Config,
}

/// The upstream's directory, a fresh nonce, and (after `account`) the account URL.
struct Session {
    key: SigningKey,
    directory: Value,
    nonce: String,
    kid: Option<String>,
}

/// What `poll` needs: the order, and the CSR to finalize it with.
#[derive(serde::Serialize, Deserialize)]
struct Handle {
    order: String,
    csr: String,
}

fn unavailable(what: &str, e: CapabilityError) -> IssuerError {
    match e {
        CapabilityError::Timeout | CapabilityError::Failed(_) => {
            log::log(log::Level::Warn, &format!("upstream ACME {what}: {e:?}"));
            IssuerError::Unavailable(5)
        }
        CapabilityError::Denied(m) | CapabilityError::Invalid(m) => {
            IssuerError::Failed(format!("upstream ACME {what}: {m}"))
        }
    }
}

fn header(response: &http::Response, name: &str) -> Option<String> {
    response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn json_body(response: &http::Response) -> Value {
    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
}

/// An upstream problem document as the gateway's error: client errors the upstream refuses
/// for good are `Rejected` with its type mapped where it has one, 5xx are retried.
fn upstream_error(what: &str, response: &http::Response) -> IssuerError {
    let problem = json_body(response);
    let urn = problem["type"].as_str().unwrap_or_default();
    let detail = format!(
        "upstream ACME {what}: {} ({urn})",
        problem["detail"].as_str().unwrap_or("no detail")
    );
    if response.status >= 500 || urn.ends_with(":rateLimited") {
        log::log(log::Level::Warn, &detail);
        return IssuerError::Unavailable(5);
    }
    let kind = match urn.rsplit(':').next().unwrap_or_default() {
        "badCSR" => ProblemType::BadCsr,
        "rejectedIdentifier" => ProblemType::RejectedIdentifier,
        "unsupportedIdentifier" => ProblemType::UnsupportedIdentifier,
        "caa" => ProblemType::Caa,
        "unauthorized" => ProblemType::Unauthorized,
        _ => ProblemType::ServerInternal,
    };
    IssuerError::Rejected(Problem {
        kind,
        detail,
        identifier: None,
    })
}

impl Upstream {
    fn get(&self, url: &str) -> Result<http::Response, IssuerError> {
        http::send(&http::Request {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: HTTP_TIMEOUT_MS,
        })
        .map_err(|e| unavailable("GET", e))
    }

    fn session(&self) -> Result<Session, IssuerError> {
        let secret = secrets::get("account_key")
            .map_err(|e| IssuerError::Failed(format!("secret account_key: {e:?}")))?;
        let key = jws::account_key(&String::from_utf8_lossy(&secret))
            .map_err(|e| IssuerError::Failed(format!("secret account_key: {e}")))?;
        let response = self.get(&self.config.directory)?;
        if response.status != 200 {
            return Err(upstream_error("directory", &response));
        }
        let directory = json_body(&response);
        let new_nonce = directory["newNonce"]
            .as_str()
            .ok_or_else(|| IssuerError::Failed("upstream directory has no newNonce".into()))?;
        let response = self.get(new_nonce)?;
        let nonce = header(&response, "replay-nonce")
            .ok_or_else(|| IssuerError::Failed("upstream gave no nonce".into()))?;
        Ok(Session {
            key,
            directory,
            nonce,
            kid: None,
        })
    }

    /// A signed POST; retried once with the fresh nonce after `badNonce` (RFC 8555 §6.5).
    fn post(
        &self,
        session: &mut Session,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<http::Response, IssuerError> {
        for attempt in 0..2 {
            let body = jws::sign(
                &session.key,
                session.kid.as_deref(),
                &session.nonce,
                url,
                payload,
            );
            let response = http::send(&http::Request {
                method: "POST".into(),
                url: url.into(),
                headers: vec![("content-type".into(), "application/jose+json".into())],
                body,
                timeout_ms: HTTP_TIMEOUT_MS,
            })
            .map_err(|e| unavailable("POST", e))?;
            if let Some(nonce) = header(&response, "replay-nonce") {
                session.nonce = nonce;
            }
            let bad_nonce = response.status == 400
                && json_body(&response)["type"] == "urn:ietf:params:acme:error:badNonce";
            if !(bad_nonce && attempt == 0) {
                return Ok(response);
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    fn url(&self, session: &Session, name: &str) -> Result<String, IssuerError> {
        session.directory[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| IssuerError::Failed(format!("upstream directory has no {name}")))
    }

    /// Creates the account, or finds the existing one for the key (RFC 8555 §7.3.1).
    fn account(&self, session: &mut Session) -> Result<(), IssuerError> {
        let url = self.url(session, "newAccount")?;
        let mut payload = json!({"termsOfServiceAgreed": true, "contact": self.config.contact});
        if let (Ok(kid), Ok(hmac)) = (secrets::get("eab_kid"), secrets::get("eab_hmac_key")) {
            let binding = jws::eab(
                &session.key,
                &String::from_utf8_lossy(&kid),
                &String::from_utf8_lossy(&hmac),
                &url,
            )
            .map_err(IssuerError::Failed)?;
            payload["externalAccountBinding"] = binding;
        }
        let response = self.post(session, &url, Some(&payload))?;
        if !matches!(response.status, 200 | 201) {
            return Err(upstream_error("newAccount", &response));
        }
        session.kid = Some(
            header(&response, "location")
                .ok_or_else(|| IssuerError::Failed("upstream account without Location".into()))?,
        );
        Ok(())
    }

    fn fetch(&self, session: &mut Session, url: &str, what: &str) -> Result<Value, IssuerError> {
        let response = self.post(session, url, None)?;
        if response.status != 200 {
            return Err(upstream_error(what, &response));
        }
        Ok(json_body(&response))
    }

    /// Moves the order on as far as it goes now: answers pending authorizations, finalizes a
    /// ready order, downloads a valid one's chain.
    fn advance(&self, session: &mut Session, handle: &Handle) -> Result<IssueOutcome, IssuerError> {
        let order = self.fetch(session, &handle.order, "order")?;
        let pending = || {
            let handle = serde_json::to_string(handle).unwrap_or_default();
            Ok(IssueOutcome::Pending(PendingIssue {
                handle,
                retry_after: POLL_AFTER_SECS,
            }))
        };
        match order["status"].as_str().unwrap_or_default() {
            "pending" => {
                for authz_url in order["authorizations"].as_array().into_iter().flatten() {
                    let authz_url = authz_url.as_str().unwrap_or_default();
                    let authz = self.fetch(session, authz_url, "authorization")?;
                    if authz["status"] != "pending" {
                        continue;
                    }
                    let challenges = authz["challenges"].as_array().cloned().unwrap_or_default();
                    let challenge = challenges
                        .iter()
                        .find(|c| c["type"] == "http-01")
                        .or_else(|| challenges.first())
                        .and_then(|c| c["url"].as_str())
                        .ok_or_else(|| {
                            IssuerError::Failed("upstream offers no challenge".into())
                        })?;
                    if authz["challenges"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["url"] == challenge && c["status"] == "pending")
                    }) {
                        self.post(session, challenge, Some(&json!({})))?;
                    }
                }
                pending()
            }
            "ready" => {
                let finalize = order["finalize"].as_str().unwrap_or_default().to_string();
                let response = self.post(session, &finalize, Some(&json!({"csr": handle.csr})))?;
                if response.status != 200 {
                    return Err(upstream_error("finalize", &response));
                }
                if json_body(&response)["status"] == "valid" {
                    return self.advance(session, handle);
                }
                pending()
            }
            "processing" => pending(),
            "valid" => {
                let url = order["certificate"]
                    .as_str()
                    .ok_or_else(|| IssuerError::Failed("valid order without certificate".into()))?
                    .to_string();
                let response = self.post(session, &url, None)?;
                if response.status != 200 {
                    return Err(upstream_error("certificate", &response));
                }
                Ok(IssueOutcome::Issued(
                    String::from_utf8_lossy(&response.body).into_owned(),
                ))
            }
            other => Err(IssuerError::Rejected(Problem {
                kind: ProblemType::ServerInternal,
                detail: format!(
                    "upstream order is {other}: {}",
                    order["error"]["detail"].as_str().unwrap_or("no detail")
                ),
                identifier: None,
            })),
        }
    }
}

impl IssuerPlugin for Upstream {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::IssuerConnector(IssuerInfo {
                profiles: Vec::new(),
                revoke: true,
                crl: false,
            }),
            name: "acme-upstream-issuer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "An upstream ACME CA with its own account (EAB optional)".into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
        if !config.directory.starts_with("https://") && !config.directory.starts_with("http://") {
            return Err(format!(
                "directory must be a URL, not {:?}",
                config.directory
            ));
        }
        Ok(Upstream { config })
    }

    fn issue(&self, request: IssueRequest) -> Result<IssueOutcome, IssuerError> {
        let mut session = self.session()?;
        self.account(&mut session)?;
        let new_order = self.url(&session, "newOrder")?;
        let response = self.post(
            &mut session,
            &new_order,
            Some(&json!({"identifiers": request.identifiers})),
        )?;
        if response.status != 201 {
            return Err(upstream_error("newOrder", &response));
        }
        let order = header(&response, "location")
            .ok_or_else(|| IssuerError::Failed("upstream order without Location".into()))?;
        let handle = Handle {
            order,
            csr: B64.encode(&request.csr),
        };
        self.advance(&mut session, &handle)
    }

    fn poll(&self, handle: String) -> Result<IssueOutcome, IssuerError> {
        let handle: Handle = serde_json::from_str(&handle)
            .map_err(|e| IssuerError::Failed(format!("unreadable handle: {e}")))?;
        let mut session = self.session()?;
        self.account(&mut session)?;
        self.advance(&mut session, &handle)
    }

    fn revoke(&self, request: RevokeRequest) -> Result<(), IssuerError> {
        let mut session = self.session()?;
        self.account(&mut session)?;
        let url = self.url(&session, "revokeCert")?;
        let response = self.post(
            &mut session,
            &url,
            Some(
                &json!({"certificate": B64.encode(&request.certificate), "reason": request.reason}),
            ),
        )?;
        if response.status == 200 {
            Ok(())
        } else {
            Err(upstream_error("revokeCert", &response))
        }
    }

    fn ca_chain(&self) -> Result<String, IssuerError> {
        Err(IssuerError::Failed(
            "ACME has no CA certificate endpoint; the chain comes with each certificate".into(),
        ))
    }
}

acmegate_plugin_sdk::issuer_plugin!(Upstream);
