//! A notifier that POSTs each certificate event as JSON to a webhook (a chat integration, an
//! incident tool, a service of the platform team).
//!
//! Configuration (JSON): `url`, optional `timeout_ms` (default 5000), optional
//! `min_severity` (`info`, `warning` or `critical`; default `info`), optional `token_secret`:
//! the name of a granted secret sent as `Authorization: Bearer <secret>`. Grant the webhook's
//! host in `http_hosts` (and `http_plain` / `http_private` for an internal plain HTTP one).
//!
//! The body: `{"event", "severity", "message", "days_left", "certificate": {"serial",
//! "identifiers": [{"type", "value"}], "not_before", "not_after", "account"}}`. Any 2xx is a
//! delivery; anything else an error the gateway logs and counts.

use acmegate_plugin_sdk::notifier::*;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
    #[serde(default)]
    min_severity: Option<String>,
    #[serde(default)]
    token_secret: Option<String>,
}

fn default_timeout() -> u32 {
    5_000
}

struct Webhook {
    config: Config,
    min_rank: u8,
}

fn event_name(kind: EventType) -> &'static str {
    match kind {
        EventType::Issued => "issued",
        EventType::Renewed => "renewed",
        EventType::Revoked => "revoked",
        EventType::Expiring => "expiring",
        EventType::Failed => "failed",
    }
}

fn certificate(c: &Certificate) -> Value {
    json!({
        "serial": c.serial,
        "identifiers": c.identifiers,
        "not_before": c.not_before,
        "not_after": c.not_after,
        "account": c.account,
    })
}

impl NotifierPlugin for Webhook {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::Notifier(NotifierInfo {
                channels: vec!["webhook".into()],
            }),
            name: "webhook-notifier".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "POSTs each certificate event as JSON to a webhook".into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
        if !config.url.starts_with("https://") && !config.url.starts_with("http://") {
            return Err(format!("url {:?} is not an http(s) URL", config.url));
        }
        let min_rank = min_severity_rank(config.min_severity.as_deref())?;
        Ok(Webhook { config, min_rank })
    }

    fn notify(&self, event: Event) -> Result<(), PluginError> {
        if severity_rank(event.severity) < self.min_rank {
            return Ok(());
        }
        let severity = match event.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        };
        let body = json!({
            "event": event_name(event.event_type),
            "severity": severity,
            "message": event.message,
            "days_left": event.days_left,
            "certificate": event.certificate.as_ref().map(certificate),
        });
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(name) = &self.config.token_secret {
            let token = secrets::get(name).map_err(|e| format!("secret {name:?}: {e:?}"))?;
            let token =
                String::from_utf8(token).map_err(|_| format!("secret {name:?} is not text"))?;
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        let response = http::send(&http::Request {
            method: "POST".into(),
            url: self.config.url.clone(),
            headers,
            body: body.to_string().into_bytes(),
            timeout_ms: self.config.timeout_ms,
        })
        .map_err(|e| format!("webhook unreachable: {e:?}"))?;
        if !(200..300).contains(&response.status) {
            return Err(format!("webhook answered {}", response.status).into());
        }
        Ok(())
    }
}

acmegate_plugin_sdk::notifier_plugin!(Webhook);
