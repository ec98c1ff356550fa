//! acmegate issuer connector for a uPKI CA over ZeroMQ (the gateway's `zmq` capability), so
//! that acmegate can stand where a uPKI RA stands. `docs/upki.md` has the protocol and the
//! decisions for each quirk of the CA.
//!
//! Configuration (JSON):
//! - `endpoint`: the CA's main socket, e.g. `tcp://ca.internal:5000` (grant it in
//!   `zmq_endpoints`);
//! - `profiles`: acmegate profile name → uPKI profile (default: every profile → `server`);
//! - `timeout_ms`: per request (default 5000; key generation on the CA can take over 0.5 s);
//! - `registration`: `{cn, profile}` to register this RA with the CA on first use, as a uPKI
//!   RA does: with the seed in the secret `registration_seed` (granted), on the CA's
//!   registration port (`registration_endpoint`, default: the main port + 1). The returned
//!   certificate, key and CA certificate are kept in the plugin's state (persisted by the
//!   gateway, sealed at rest) and reused; the seed is never logged or stored.

mod csr;
mod protocol;

use std::collections::BTreeMap;

use acmegate_plugin_sdk::issuer::*;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use protocol::{CaError, Reply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    endpoint: String,
    #[serde(default)]
    profiles: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
    #[serde(default)]
    registration: Option<Registration>,
    #[serde(default)]
    registration_endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    cn: String,
    #[serde(default = "default_ra_profile")]
    profile: String,
}

fn default_ra_profile() -> String {
    "ra".into()
}

/// State keys of the registered identity.
const IDENTITY_CERT: &str = "identity/certificate";
const IDENTITY_KEY: &str = "identity/private_key";
const IDENTITY_CA: &str = "identity/ca_certificate";

fn default_timeout() -> u32 {
    5_000
}

struct Upki(Config);

/// RFC 5280 §5.3.1 reason codes by the names the CA takes (7 is unused).
const REASONS: [&str; 11] = [
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "",
    "removeFromCRL",
    "privilegeWithdrawn",
    "aACompromise",
];

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn problem(kind: ProblemType, detail: String) -> IssuerError {
    IssuerError::Rejected(Problem {
        kind,
        detail,
        identifier: None,
    })
}

impl Upki {
    /// One task on the CA's main socket.
    fn call(&self, task: &str, params: Value) -> Result<Reply, IssuerError> {
        self.call_raw(task, params).map(|(reply, _)| reply)
    }

    /// One task; also returns the reply's text, for integers too big to parse.
    fn call_raw(&self, task: &str, params: Value) -> Result<(Reply, String), IssuerError> {
        self.call_at(&self.0.endpoint, task, params)
    }

    /// The registration port: configured, or the main port + 1.
    fn registration_endpoint(&self) -> Result<String, IssuerError> {
        if let Some(endpoint) = &self.0.registration_endpoint {
            return Ok(endpoint.clone());
        }
        let (host, port) = self
            .0
            .endpoint
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or_else(|| IssuerError::Failed("endpoint has no port".into()))?;
        Ok(format!("{host}:{}", port.saturating_add(1)))
    }

    /// Registers with the CA once (first use with a configured registration), keeping the
    /// identity in the plugin's state.
    fn ensure_registered(&self) -> Result<(), IssuerError> {
        let Some(registration) = &self.0.registration else {
            return Ok(());
        };
        let state_err = |e: CapabilityError| {
            IssuerError::Failed(format!("uPKI registration needs the state grant: {e:?}"))
        };
        if state::get(IDENTITY_CERT).map_err(state_err)?.is_some() {
            return Ok(());
        }
        let seed = secrets::get("registration_seed").map_err(|e| {
            IssuerError::Failed(format!(
                "uPKI registration needs the secret registration_seed: {e:?}"
            ))
        })?;
        let params = json!({
            "seed": String::from_utf8_lossy(&seed),
            "cn": registration.cn,
            "profile": registration.profile,
        });
        let endpoint = self.registration_endpoint()?;
        let data = match self.call_at(&endpoint, "register", params)?.0 {
            Reply::Answer(data) => data,
            // The CA's message names no seed; ours neither.
            Reply::Error(e) => {
                return Err(IssuerError::Failed(format!(
                    "uPKI registration of {} refused: [{}] {}",
                    registration.cn, e.code, e.text
                )))
            }
        };
        for (field, key) in [
            ("certificate", IDENTITY_CERT),
            ("private_key", IDENTITY_KEY),
            ("ca_certificate", IDENTITY_CA),
        ] {
            let value = data[field].as_str().ok_or_else(|| {
                IssuerError::Failed(format!("uPKI registration answer lacks {field}"))
            })?;
            state::set(key, value.as_bytes()).map_err(state_err)?;
        }
        log::log(
            log::Level::Info,
            &format!("registered with the uPKI CA as {}", registration.cn),
        );
        Ok(())
    }

    fn call_at(
        &self,
        endpoint: &str,
        task: &str,
        params: Value,
    ) -> Result<(Reply, String), IssuerError> {
        let request = json!({"TASK": task, "params": params}).to_string();
        let reply = zmq::request(endpoint, &[request.into_bytes()], self.0.timeout_ms).map_err(
            |e| match e {
                // The CA did not answer in time: the gateway retries with backoff.
                CapabilityError::Timeout => IssuerError::Unavailable(5),
                CapabilityError::Failed(m) => {
                    log::log(log::Level::Warn, &format!("uPKI {task}: {m}"));
                    IssuerError::Unavailable(5)
                }
                CapabilityError::Denied(m) | CapabilityError::Invalid(m) => {
                    IssuerError::Failed(format!("uPKI {task}: {m}"))
                }
            },
        )?;
        let frame = reply
            .first()
            .ok_or_else(|| IssuerError::Failed(format!("uPKI {task}: empty reply")))?;
        let reply = protocol::parse_reply(frame)
            .map_err(|e| IssuerError::Failed(format!("uPKI {task}: {e}")))?;
        Ok((reply, String::from_utf8_lossy(frame).into_owned()))
    }

    /// The CA's error as the gateway's: refusals of the request for good, outages for retry.
    fn refusal(task: &str, error: CaError) -> IssuerError {
        let detail = format!(
            "the uPKI CA refused {task}: [{}] {}",
            error.code, error.text
        );
        match error.code {
            // Validation (reserved names and the like): the identifier is refused.
            200 => problem(ProblemType::RejectedIdentifier, detail),
            // Certificate and key problems of the request.
            300 | 400 => problem(ProblemType::BadCsr, detail),
            // A profile the CA lacks is the operator's mapping to fix, not the client's.
            500 | 800 => problem(ProblemType::ServerInternal, detail),
            // Storage and communication trouble may pass.
            100 | 700 => IssuerError::Unavailable(5),
            _ => IssuerError::Failed(detail),
        }
    }

    fn ca_pem(&self) -> Result<String, IssuerError> {
        match self.call("get_ca", Value::Null)? {
            Reply::Answer(Value::String(pem)) => Ok(pem),
            Reply::Answer(other) => Err(IssuerError::Failed(format!(
                "uPKI get_ca: unexpected answer {other}"
            ))),
            Reply::Error(e) => Err(Self::refusal("get_ca", e)),
        }
    }
}

impl IssuerPlugin for Upki {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::IssuerConnector(IssuerInfo {
                profiles: Vec::new(),
                revoke: true,
                crl: true,
            }),
            name: "upki-issuer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A uPKI CA over ZeroMQ (sign, revoke by CN, CRL)".into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config =
            serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
        if !config.endpoint.starts_with("tcp://") {
            return Err(format!(
                "endpoint must be tcp://host:port, not {:?}",
                config.endpoint
            ));
        }
        Ok(Upki(config))
    }

    fn issue(&self, request: IssueRequest) -> Result<IssueOutcome, IssuerError> {
        self.ensure_registered()?;
        let mut der = request.csr.clone();
        let empty = csr::subject_is_empty(&der)
            .map_err(|e| problem(ProblemType::BadCsr, format!("unreadable CSR: {e}")))?;
        if empty {
            // The CA needs a CN (docs/upki.md): the first identifier that fits one.
            let cn = request
                .identifiers
                .iter()
                .map(|i| i.value.as_str())
                .find(|v| v.len() <= csr::MAX_CN_LEN)
                .ok_or_else(|| {
                    problem(
                        ProblemType::RejectedIdentifier,
                        format!(
                            "the uPKI CA needs a Common Name of at most {} characters; no identifier fits",
                            csr::MAX_CN_LEN
                        ),
                    )
                })?;
            der = csr::with_common_name(&der, cn)
                .map_err(|e| problem(ProblemType::BadCsr, format!("CSR cannot take a CN: {e}")))?;
        }
        let profile = self
            .0
            .profiles
            .get(&request.profile)
            .cloned()
            .unwrap_or_else(|| "server".into());
        let leaf = match self.call(
            "sign",
            json!({"csr": pem("CERTIFICATE REQUEST", &der), "profile": profile}),
        )? {
            Reply::Answer(data) => data["certificate"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| IssuerError::Failed("uPKI sign: no certificate".into()))?,
            Reply::Error(e) => return Err(Self::refusal("sign", e)),
        };
        // The CA answers the leaf alone; clients get leaf + CA certificate.
        let ca = self.ca_pem()?;
        Ok(IssueOutcome::Issued(
            format!("{}\n{}", leaf.trim_end(), ca.trim_end()) + "\n",
        ))
    }

    fn revoke(&self, request: RevokeRequest) -> Result<(), IssuerError> {
        let reason = REASONS
            .get(usize::from(request.reason))
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                problem(
                    ProblemType::ServerInternal,
                    format!("reason code {} has no uPKI name", request.reason),
                )
            })?;
        let cn = csr::certificate_common_name(&request.certificate).ok_or_else(|| {
            problem(
                ProblemType::ServerInternal,
                "the certificate has no Common Name, so the uPKI CA cannot find it".into(),
            )
        })?;
        // The CA revokes the newest certificate of a CN: make sure that is this one.
        let newest = match self.call_raw("view", json!({"dn": cn}))? {
            (Reply::Answer(_), text) => protocol::raw_integer(&text, "serial"),
            (Reply::Error(e), _) => return Err(Self::refusal("view", e)),
        };
        let newest = newest.map(|digits| protocol::decimal_to_hex(&digits));
        if newest.as_deref() != Some(request.serial.as_str()) {
            return Err(problem(
                ProblemType::Unauthorized,
                format!(
                    "the uPKI CA can only revoke the newest certificate of {cn}, which is serial {}, not {}; revoke that one first or let this one expire",
                    newest.unwrap_or_else(|| "unknown".into()),
                    request.serial
                ),
            ));
        }
        match self.call("revoke", json!({"dn": cn, "reason": reason}))? {
            Reply::Answer(_) => {}
            Reply::Error(e) => return Err(Self::refusal("revoke", e)),
        }
        // `get_crl` serves the CRL of the last `generate_crl`: rebuild it so the revocation
        // shows. The revocation stands even if this fails; the next one rebuilds again.
        if let Err(e) = self.call("generate_crl", Value::Null) {
            log::log(
                log::Level::Warn,
                &format!("uPKI generate_crl after revoking {cn}: {e:?}"),
            );
        }
        Ok(())
    }

    fn ca_chain(&self) -> Result<String, IssuerError> {
        self.ca_pem()
    }

    fn crl(&self) -> Result<Vec<u8>, IssuerError> {
        match self.call("get_crl", Value::Null)? {
            Reply::Answer(Value::String(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| IssuerError::Failed(format!("uPKI get_crl: not base64: {e}"))),
            Reply::Answer(other) => Err(IssuerError::Failed(format!(
                "uPKI get_crl: unexpected answer {other}"
            ))),
            Reply::Error(e) => Err(Self::refusal("get_crl", e)),
        }
    }
}

acmegate_plugin_sdk::issuer_plugin!(Upki);
