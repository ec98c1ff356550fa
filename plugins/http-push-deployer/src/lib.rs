//! A target deployer that pushes each certificate to an HTTP endpoint of the target (an edge
//! proxy's certificate API, an appliance, a platform team's small service) and verifies it.
//!
//! The plugin's own configuration (JSON) is optional: `timeout_ms` (default 10000) per
//! request. Each gateway target (`[[targets]]`) that names this deployer says where to push in
//! its `config`:
//!
//! ```text
//! { "url": "https://edge.internal/certificate",
//!   "token_secret": "edge-token",
//!   "send_key": true,
//!   "probe": { "host": "edge.internal", "port": 443, "server_name": "www.example.com" } }
//! ```
//!
//! Deploy POSTs `{"target", "serial", "identifiers": [{"type", "value"}], "chain",
//! "private_key" (when the gateway holds the key and `send_key` is not false), "not_after"}`;
//! any 2xx deploys. Verify, with `probe`, completes a TLS handshake with the target (the
//! `tls_probe_hosts` grant) and compares the served leaf's serial; without it, GETs `url`, which
//! answers `{"serial": "<hex>"}` for the certificate it serves now, or 404 when none.
//!
//! Grants: the URL's host in `http_hosts` (`http_plain`/`http_private` for an internal
//! plain-HTTP one), the probed host in `tls_probe_hosts`, the token's name in `secrets`.

use acmegate_plugin_sdk::deployer::*;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
}

/// One target's `config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetConfig {
    url: String,
    /// A granted secret sent as `Authorization: Bearer <secret>`.
    #[serde(default)]
    token_secret: Option<String>,
    /// Whether to send the private key when the gateway holds it.
    #[serde(default = "yes")]
    send_key: bool,
    #[serde(default)]
    probe: Option<Probe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    host: String,
    #[serde(default = "https_port")]
    port: u16,
    /// SNI; the host when absent.
    #[serde(default)]
    server_name: Option<String>,
}

fn default_timeout() -> u32 {
    10_000
}

fn yes() -> bool {
    true
}

fn https_port() -> u16 {
    443
}

struct HttpPush {
    config: Config,
}

/// The settings of `target`, or why they are unusable (for the operator).
fn target_config(target: &Target) -> Result<TargetConfig, String> {
    let config: TargetConfig = serde_json::from_str(&target.config)
        .map_err(|e| format!("target {:?}: bad config: {e}", target.name))?;
    if !config.url.starts_with("https://") && !config.url.starts_with("http://") {
        return Err(format!(
            "target {:?}: url {:?} is not http(s)",
            target.name, config.url
        ));
    }
    Ok(config)
}

impl HttpPush {
    fn send(
        &self,
        target: &TargetConfig,
        method: &str,
        body: Vec<u8>,
    ) -> Result<http::Response, String> {
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        if !body.is_empty() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(name) = &target.token_secret {
            let token = secrets::get(name).map_err(|e| format!("secret {name:?}: {e:?}"))?;
            let token =
                String::from_utf8(token).map_err(|_| format!("secret {name:?} is not text"))?;
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        http::send(&http::Request {
            method: method.into(),
            url: target.url.clone(),
            headers,
            body,
            timeout_ms: self.config.timeout_ms,
        })
        .map_err(|e| format!("{method} {} failed: {e:?}", target.url))
    }

    fn verify_by_get(&self, target: &TargetConfig, serial: &str) -> Result<VerifyOutcome, String> {
        let response = self.send(target, "GET", Vec::new())?;
        match response.status {
            404 => Ok(VerifyOutcome::Missing),
            200..=299 => {
                let body: Value = serde_json::from_slice(&response.body)
                    .map_err(|e| format!("GET {} answered no JSON: {e}", target.url))?;
                match body["serial"].as_str() {
                    Some(served) => Ok(compare_serials(served, serial)),
                    None => Ok(VerifyOutcome::Missing),
                }
            }
            status => Err(format!("GET {} answered {status}", target.url)),
        }
    }
}

/// The JSON body of a push.
fn body(deployment: &Deployment, send_key: bool) -> Value {
    let mut body = json!({
        "target": deployment.target.name,
        "serial": deployment.serial,
        "identifiers": deployment.identifiers,
        "chain": deployment.chain,
        "not_after": deployment.not_after,
    });
    if let (true, Some(key)) = (send_key, &deployment.private_key) {
        body["private_key"] = Value::from(key.as_str());
    }
    body
}

/// A short, one-line receipt from the target's answer, for the audit log.
fn receipt(url: &str, response: &http::Response) -> String {
    let text = String::from_utf8_lossy(&response.body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut receipt = format!("pushed to {url}: HTTP {}", response.status);
    if !text.is_empty() {
        receipt.push_str(": ");
        receipt.extend(text.chars().take(160));
    }
    receipt
}

impl DeployerPlugin for HttpPush {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::TargetDeployer(DeployerInfo {
                targets: vec!["http".into()],
            }),
            name: "http-push-deployer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Pushes certificates to an HTTP endpoint; verifies over HTTP or TLS"
                .into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
        Ok(HttpPush { config })
    }

    fn deploy(&self, deployment: Deployment) -> Result<String, PluginError> {
        // A target configuration this deployer cannot use stays so until the operator acts.
        let target = target_config(&deployment.target).map_err(PluginError::Permanent)?;
        let body = body(&deployment, target.send_key).to_string().into_bytes();
        let response = self.send(&target, "POST", body)?;
        if !(200..300).contains(&response.status) {
            let refused = format!(
                "{} refused the certificate: HTTP {}",
                target.url, response.status
            );
            return Err(refusal(response.status, refused));
        }
        Ok(receipt(&target.url, &response))
    }

    fn verify(&self, target: Target, serial: String) -> Result<VerifyOutcome, PluginError> {
        let config = target_config(&target).map_err(PluginError::Permanent)?;
        Ok(match &config.probe {
            Some(probe) => verify_by_probe(
                &probe.host,
                probe.port,
                probe.server_name.as_deref(),
                &serial,
                self.config.timeout_ms,
            )?,
            None => self.verify_by_get(&config, &serial)?,
        })
    }
}

/// An HTTP refusal of a push as the gateway should take it: a client error (RFC 9110 §15.5)
/// says the request itself is wrong and resending it cannot help, except 408 (Request Timeout)
/// and 429 (Too Many Requests), which ask for a later attempt; server errors are retryable.
fn refusal(status: u16, message: String) -> PluginError {
    match status {
        408 | 429 => PluginError::Retryable(message),
        400..=499 => PluginError::Permanent(message),
        _ => PluginError::Retryable(message),
    }
}

acmegate_plugin_sdk::deployer_plugin!(HttpPush);

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(key: Option<&str>) -> Deployment {
        Deployment {
            target: target(r#"{"url": "https://edge/cert"}"#),
            identifiers: vec![Identifier {
                kind: IdentifierType::Dns,
                value: "www.example.com".into(),
            }],
            serial: "0a1b".into(),
            chain: "-----BEGIN CERTIFICATE-----".into(),
            private_key: key.map(str::to_string),
            not_after: 1_900_000_000,
        }
    }

    #[test]
    fn the_key_is_sent_only_when_held_and_allowed() {
        let with = body(&deployment(Some("KEY")), true);
        assert_eq!(with["private_key"], "KEY");
        // The SDK's JSON form of identifiers, as RFC 8555 writes them.
        assert_eq!(
            with["identifiers"],
            json!([{"type": "dns", "value": "www.example.com"}])
        );
        assert!(body(&deployment(Some("KEY")), false)
            .get("private_key")
            .is_none());
        assert!(body(&deployment(None), true).get("private_key").is_none());
    }

    fn target(config: &str) -> Target {
        Target {
            name: "edge".into(),
            config: config.into(),
        }
    }

    #[test]
    fn client_errors_are_permanent_and_the_rest_retryable() {
        let kind = |status| match refusal(status, String::new()) {
            PluginError::Permanent(_) => "permanent",
            PluginError::Retryable(_) => "retryable",
        };
        assert_eq!(kind(400), "permanent");
        assert_eq!(kind(403), "permanent");
        assert_eq!(kind(408), "retryable");
        assert_eq!(kind(429), "retryable");
        assert_eq!(kind(500), "retryable");
        assert_eq!(kind(503), "retryable");
    }

    #[test]
    fn each_target_names_an_http_url() {
        let err = target_config(&target(r#"{"url": "ftp://x"}"#))
            .err()
            .unwrap();
        assert!(err.contains("edge") && err.contains("ftp"), "{err}");
        assert!(target_config(&target("{}")).is_err(), "no url");
        let probe = target_config(&target(
            r#"{"url": "https://edge/cert", "probe": {"host": "edge"}}"#,
        ))
        .unwrap()
        .probe
        .unwrap();
        assert_eq!(probe.port, 443);
        assert!(HttpPush::configure("{}").is_ok());
        assert!(
            HttpPush::configure(r#"{"timeout": 1}"#).is_err(),
            "unknown key"
        );
    }

    #[test]
    fn serials_match_whatever_their_spelling() {
        assert!(matches!(
            compare_serials("00:0A:1B", "a1b"),
            VerifyOutcome::Deployed
        ));
        assert!(
            matches!(compare_serials("ff", "a1b"), VerifyOutcome::Mismatch(m) if m.contains("ff"))
        );
    }
}
