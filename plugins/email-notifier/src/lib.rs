//! A notifier that e-mails each certificate event, in plain text, through the mail relay the
//! operator grants (the `smtp` capability: relay, sender, allowed recipients and STARTTLS are
//! the grant's, so this plugin cannot write to anyone else or from anyone else).
//!
//! Configuration (JSON): `to` (the recipients, each allowed by the grant), optional
//! `min_severity` (`info`, `warning` or `critical`; default `info`), optional `subject_prefix`
//! (default `[acmegate]`).
//!
//! The subject names the event, its severity and the certificate's first name, e.g.
//! `[acmegate] Certificate expiring (warning): www.example.com`; the body carries the gateway's
//! sentence and the certificate's names, serial, validity, days left and account.

use acmegate_plugin_sdk::notifier::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    to: Vec<String>,
    #[serde(default)]
    min_severity: Option<String>,
    #[serde(default = "default_prefix")]
    subject_prefix: String,
}

fn default_prefix() -> String {
    "[acmegate]".into()
}

struct Email {
    config: Config,
    min_rank: u8,
}

fn severity_name(severity: Severity) -> &'static str {
    ["info", "warning", "critical"][usize::from(severity_rank(severity))]
}

fn title(kind: EventType) -> &'static str {
    match kind {
        EventType::Issued => "Certificate issued",
        EventType::Renewed => "Certificate renewed",
        EventType::Revoked => "Certificate revoked",
        EventType::Expiring => "Certificate expiring",
        EventType::Failed => "Certificate operation failed",
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC` (civil from days, proleptic Gregorian).
fn utc(seconds: i64) -> String {
    let (days, rem) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// The subject and body of `event`.
fn compose(prefix: &str, event: &Event) -> (String, String) {
    let mut subject = format!(
        "{prefix} {} ({})",
        title(event.event_type),
        severity_name(event.severity)
    );
    let mut body = format!("{}\n", event.message);
    if let Some(c) = &event.certificate {
        let names: Vec<&str> = c.identifiers.iter().map(|i| i.value.as_str()).collect();
        if let Some(first) = names.first() {
            subject.push_str(": ");
            subject.push_str(first);
        }
        body.push_str(&format!(
            "\nNames:   {}\nSerial:  {}\nValid:   {} to {}\n",
            names.join(", "),
            c.serial,
            utc(c.not_before),
            utc(c.not_after)
        ));
        if let Some(days) = event.days_left {
            body.push_str(&format!("Left:    {days} days\n"));
        }
        body.push_str(&format!("Account: {}\n", c.account));
    }
    (subject, body)
}

impl NotifierPlugin for Email {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::Notifier(NotifierInfo {
                channels: vec!["email".into()],
            }),
            name: "email-notifier".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "E-mails each certificate event through the operator's mail relay".into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
        if config.to.is_empty() {
            return Err("to = [] names no recipient".into());
        }
        let min_rank = min_severity_rank(config.min_severity.as_deref())?;
        Ok(Email { config, min_rank })
    }

    fn notify(&self, event: Event) -> Result<(), PluginError> {
        if severity_rank(event.severity) < self.min_rank {
            return Ok(());
        }
        let (subject, body) = compose(&self.config.subject_prefix, &event);
        smtp::send(&smtp::Message {
            to: self.config.to.clone(),
            subject,
            body,
        })
        .map(|_| ())
        .map_err(|e| PluginError::Retryable(format!("mail not sent: {e:?}")))
    }
}

acmegate_plugin_sdk::notifier_plugin!(Email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn the_subject_names_the_event_and_the_first_name() {
        let event = Event {
            event_type: EventType::Expiring,
            severity: Severity::Warning,
            certificate: Some(Certificate {
                serial: "0a1b".into(),
                identifiers: vec![Identifier {
                    kind: IdentifierType::Dns,
                    value: "www.example.com".into(),
                }],
                not_before: 1_700_000_000,
                not_after: 1_700_604_800,
                account: "https://ca/acme/acct/1".into(),
            }),
            days_left: Some(7),
            message: "expires in 7 days".into(),
        };
        let (subject, body) = compose("[pki]", &event);
        assert_eq!(
            subject,
            "[pki] Certificate expiring (warning): www.example.com"
        );
        assert!(body.starts_with("expires in 7 days\n"), "{body}");
        assert!(body.contains("Serial:  0a1b\n") && body.contains("Left:    7 days\n"));
        assert!(Email::configure(r#"{"to": []}"#).is_err());
        assert!(Email::configure(r#"{"to": ["a@b"], "min_severity": "loud"}"#).is_err());
        assert!(Email::configure(r#"{"to": ["a@b"], "cc": []}"#).is_err());
    }
}
