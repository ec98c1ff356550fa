//! A challenge validator and newOrder policy that asks an operator's HTTP service whether an
//! account may have a name: the ownership lookup a platform team already has (a CMDB, a DNS
//! inventory, a service catalogue) decides, without a network challenge.
//!
//! Configuration (JSON): `url` of the service, optional `timeout_ms` (default 2000). Grant the
//! service's host in `http_hosts` (and `http_plain` / `http_private` for an internal plain
//! HTTP service).
//!
//! For each identifier the plugin POSTs
//! `{"account": URL, "identifier": {"type", "value"}, "challenge_type": "http-01" | null}` and
//! expects `200 {"allow": true|false, "reason": "..."}`. A refusal fails the challenge (or the
//! newOrder, one subproblem per refused name) with the service's reason; a service that does
//! not answer makes validation retry later and the newOrder policy fail closed.

use acmegate_plugin_sdk::validator::*;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
}

fn default_timeout() -> u32 {
    2_000
}

#[derive(Deserialize)]
struct Answer {
    allow: bool,
    #[serde(default)]
    reason: String,
}

struct HttpCheck(Config);

/// The service's verdict; `Err` when it cannot be had (down, 5xx, not JSON).
impl HttpCheck {
    fn ask(
        &self,
        account: &str,
        id: &Identifier,
        challenge: Option<&str>,
    ) -> Result<Answer, String> {
        let body = json!({
            "account": account,
            "identifier": id,
            "challenge_type": challenge.map_or(Value::Null, Value::from),
        });
        let response = http::send(&http::Request {
            method: "POST".into(),
            url: self.0.url.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            timeout_ms: self.0.timeout_ms,
        })
        .map_err(|e| format!("ownership service unreachable: {e:?}"))?;
        if response.status != 200 {
            return Err(format!("ownership service answered {}", response.status));
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| format!("ownership service answer is not {{allow, reason}}: {e}"))
    }
}

fn refusal(id: &Identifier, answer: &Answer) -> Problem {
    let reason = if answer.reason.is_empty() {
        "not allowed for this account"
    } else {
        answer.reason.as_str()
    };
    problem(
        ProblemType::RejectedIdentifier,
        id,
        format!("{}: {reason}", id.value),
    )
}

impl ValidatorPlugin for HttpCheck {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::ChallengeValidator(ValidatorInfo {
                challenge_types: ["http-01", "dns-01", "tls-alpn-01"]
                    .map(String::from)
                    .to_vec(),
                identifier_types: vec![IdentifierType::Dns, IdentifierType::Ip],
                new_order_policy: true,
            }),
            name: "http-check-validator".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Asks an operator HTTP service whether an account may have a name".into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
        if !config.url.starts_with("https://") && !config.url.starts_with("http://") {
            return Err(format!("url must be an http(s) URL, not {:?}", config.url));
        }
        Ok(HttpCheck(config))
    }

    fn validate(&self, request: ChallengeRequest) -> Result<ValidationOutcome, PluginError> {
        match self.ask(
            &request.account,
            &request.identifier,
            Some(&request.challenge_type),
        ) {
            Ok(answer) if answer.allow => Ok(ValidationOutcome::Valid),
            Ok(answer) => Ok(ValidationOutcome::Invalid(Problem {
                kind: ProblemType::Unauthorized,
                ..refusal(&request.identifier, &answer)
            })),
            Err(e) => {
                log::log(log::Level::Warn, &e);
                Ok(ValidationOutcome::RetryLater(2))
            }
        }
    }

    fn check_new_order(&self, order: OrderRequest) -> Result<PolicyDecision, PluginError> {
        let mut refused = Vec::new();
        for id in &order.identifiers {
            let answer = self.ask(&order.account, id, None)?;
            if !answer.allow {
                refused.push(refusal(id, &answer));
            }
        }
        Ok(if refused.is_empty() {
            PolicyDecision::Allow
        } else {
            PolicyDecision::Refuse(refused)
        })
    }
}

acmegate_plugin_sdk::validator_plugin!(HttpCheck);
