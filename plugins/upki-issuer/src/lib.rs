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

use std::collections::BTreeMap;

use acmegate_plugin_sdk::issuer::*;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use upki_wire::der;
use upki_wire::protocol::{self, CaError, Reply};

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

/// Seconds before retrying after the CA did not answer: long enough for a restarting CA
/// (a SIGTERM takes it about 8 s) not to be hammered, short for an ACME client polling.
const UNAVAILABLE_RETRY_SECONDS: u32 = 5;

/// Seconds before retrying after the CA's storage failed (`[100]`).
const STORAGE_RETRY_SECONDS: u32 = 5;

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

    /// One task; also returns the reply frame, for integers too big to parse.
    fn call_raw(&self, task: &str, params: Value) -> Result<(Reply, Vec<u8>), IssuerError> {
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
            // Final (a wrong seed stays wrong): the order fails now with the CA's text. The
            // CA's message names no seed; ours neither.
            Reply::Error(e) => {
                return Err(problem(
                    ProblemType::ServerInternal,
                    format!(
                        "uPKI registration of {} refused: [{}] {}",
                        registration.cn, e.code, e.text
                    ),
                ))
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
    ) -> Result<(Reply, Vec<u8>), IssuerError> {
        let request = json!({"TASK": task, "params": params}).to_string();
        let reply = zmq::request(endpoint, &[request.into_bytes()], self.0.timeout_ms).map_err(
            |e| match e {
                // The CA did not answer in time: the gateway retries with backoff.
                CapabilityError::Timeout => {
                    log::log(
                        log::Level::Warn,
                        &format!(
                            "uPKI {task}: no answer from {endpoint} within {} ms",
                            self.0.timeout_ms
                        ),
                    );
                    IssuerError::Unavailable(UNAVAILABLE_RETRY_SECONDS)
                }
                CapabilityError::Failed(m) => {
                    log::log(log::Level::Warn, &format!("uPKI {task} at {endpoint}: {m}"));
                    IssuerError::Unavailable(UNAVAILABLE_RETRY_SECONDS)
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
        Ok((reply, frame.clone()))
    }

    /// The CA's refusal of `task` as the gateway's error. What the CA *answered* is final: asked
    /// again it answers the same, and its codes cannot say otherwise (`[700]` covers a wrong
    /// registration seed, a missing parameter and an unknown task alike), so the order fails
    /// now with the CA's text. The one exception is `[100]`: the CA's own storage failed (a full
    /// disk, a locked file), which may pass, so the gateway retries. No answer at all (timeout,
    /// unreachable) is retried too, in `call_at`.
    fn refusal(task: &str, error: CaError) -> IssuerError {
        let detail = format!(
            "the uPKI CA refused {task}: [{}] {}",
            error.code, error.text
        );
        let kind = match error.code {
            100 => {
                log::log(log::Level::Warn, &detail);
                return IssuerError::Unavailable(STORAGE_RETRY_SECONDS);
            }
            // Validation of the request's names or subject.
            200 if task == "sign" => ProblemType::RejectedIdentifier,
            // Certificate and key problems of the request.
            300 | 400 if task == "sign" => ProblemType::BadCsr,
            // The rest is between the gateway and its CA (a profile the CA lacks, a certificate
            // it does not know, a protocol mismatch): the operator's to fix, not the client's.
            _ => ProblemType::ServerInternal,
        };
        problem(kind, detail)
    }

    /// The CA's stored CRL (`get_crl`; `revoke` rebuilds it), DER.
    fn crl_der(&self) -> Result<Vec<u8>, IssuerError> {
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

    /// The serials on the CA's CRL.
    fn crl_serials(&self) -> Result<Vec<String>, IssuerError> {
        der::crl_serials(&self.crl_der()?)
            .map_err(|e| IssuerError::Failed(format!("uPKI get_crl: unreadable CRL: {e}")))
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
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
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
        let empty = der::subject_is_empty(&der)
            .map_err(|e| problem(ProblemType::BadCsr, format!("unreadable CSR: {e}")))?;
        if empty {
            // The CA needs a CN (docs/upki.md): the first identifier that fits one.
            let cn = request
                .identifiers
                .iter()
                .map(|i| i.value.as_str())
                .find(|v| v.len() <= der::MAX_CN_LEN)
                .ok_or_else(|| {
                    problem(
                        ProblemType::RejectedIdentifier,
                        format!(
                            "the uPKI CA needs a Common Name of at most {} characters; no identifier fits",
                            der::MAX_CN_LEN
                        ),
                    )
                })?;
            der = der::with_common_name(&der, cn)
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
            json!({"csr": acmegate_plugin_sdk::x509::pem_encode("CERTIFICATE REQUEST", &der), "profile": profile}),
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
        let cn = der::certificate_common_name(&request.certificate).ok_or_else(|| {
            problem(
                ProblemType::ServerInternal,
                "the certificate has no Common Name, so the uPKI CA cannot find it".into(),
            )
        })?;
        // Already on the CA's CRL (a revocation whose answer was lost to a timeout or a
        // restart): done. Asking again would add a second CRL entry, or hit a newer
        // certificate of the same CN.
        if self.crl_serials()?.contains(&request.serial) {
            log::log(
                log::Level::Info,
                &format!("serial {} is already on the uPKI CA's CRL", request.serial),
            );
            return Ok(());
        }
        // The CA revokes the newest certificate of a CN: make sure that is this one.
        let newest = match self.call_raw("view", json!({"dn": cn}))? {
            // The newest certificate's serial is DATA's `serial_number`, a JSON integer of up
            // to 160 bits (there is no `serial` field in `view`).
            (Reply::Answer(_), frame) => protocol::answer_integer(&frame, "serial_number"),
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
        // The CA stores a fresh CRL as part of `revoke`: no `generate_crl` needed.
        match self.call("revoke", json!({"dn": cn, "reason": reason}))? {
            Reply::Answer(_) => Ok(()),
            Reply::Error(e) => Err(Self::refusal("revoke", e)),
        }
    }

    fn ca_chain(&self) -> Result<String, IssuerError> {
        self.ca_pem()
    }

    fn crl(&self) -> Result<Vec<u8>, IssuerError> {
        self.crl_der()
    }
}

acmegate_plugin_sdk::issuer_plugin!(Upki);
