//! An example custom challenge type for acmegate, in the spirit of the IETF draft
//! "dns-persist-01": the domain owner publishes once, at `_validation-persist.<name>`, a TXT
//! record naming this CA and the ACME account allowed to get certificates for the name:
//!
//! ```text
//! _validation-persist.www.example.org. TXT "acmegate.invalid; accounturi=https://ca/acme/acct/1"
//! ```
//!
//! Every later order of that account for that name (and for `*.<name>`, whose authorization
//! names the base domain) is then validated from the standing record, with no token to publish
//! per order.
//!
//! Configuration (JSON): `issuer_domain`, the name this CA goes by in the records (like a CAA
//! issuer domain). Grants: `dns = true` (lookups go through the gateway's resolver), and
//! `log = true` to see why a record did not match. Map it to its challenge type in the
//! gateway: `validation.challenge_plugins = { "dns-persist-01" = "<plugin name>" }`.

use acmegate_plugin_sdk::validator::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    issuer_domain: String,
}

struct DnsPersist {
    issuer_domain: String,
}

/// One parsed record: `<issuer-domain>; accounturi=<URL>; ...` (other keys ignored).
struct Record<'a> {
    issuer: &'a str,
    account: Option<&'a str>,
}

fn parse(text: &str) -> Record<'_> {
    let mut parts = text.split(';').map(str::trim);
    let issuer = parts.next().unwrap_or_default();
    let account = parts.find_map(|part| match part.split_once('=') {
        Some(("accounturi", uri)) => Some(uri.trim()),
        _ => None,
    });
    Record { issuer, account }
}

impl DnsPersist {
    /// Whether one of `records` names this CA and authorizes `account`.
    fn authorizes(&self, records: &[String], account: &str) -> bool {
        records.iter().map(|r| parse(r)).any(|r| {
            r.issuer.eq_ignore_ascii_case(&self.issuer_domain) && r.account == Some(account)
        })
    }
}

impl ValidatorPlugin for DnsPersist {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::ChallengeValidator(ValidatorInfo {
                challenge_types: vec!["dns-persist-01".into()],
                identifier_types: vec![IdentifierType::Dns],
                new_order_policy: false,
            }),
            name: "dns-persist-validator".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "A standing _validation-persist TXT record authorizes an account".into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
        if config.issuer_domain.is_empty() {
            return Err("issuer_domain must name this CA (e.g. its CAA issuer domain)".into());
        }
        Ok(DnsPersist {
            issuer_domain: config.issuer_domain,
        })
    }

    fn validate(&self, request: ChallengeRequest) -> Result<ValidationOutcome, PluginError> {
        let id = &request.identifier;
        let base = id.value.strip_prefix("*.").unwrap_or(&id.value);
        let name = format!("_validation-persist.{base}");
        let records = match dns::lookup(&name, dns::RecordType::Txt) {
            Ok(records) => records,
            // The resolver could not answer: try again later rather than fail the client.
            Err(e) => {
                log::log(log::Level::Warn, &format!("lookup of {name} failed: {e:?}"));
                return Ok(ValidationOutcome::RetryLater(5));
            }
        };
        if self.authorizes(&records, &request.account) {
            return Ok(ValidationOutcome::Valid);
        }
        let why = if records.is_empty() {
            format!("no TXT record at {name}")
        } else {
            format!(
                "no TXT record at {name} names issuer {:?} with accounturi={}",
                self.issuer_domain, request.account
            )
        };
        Ok(ValidationOutcome::Invalid(problem(
            ProblemType::Unauthorized,
            id,
            why,
        )))
    }
}

acmegate_plugin_sdk::validator_plugin!(DnsPersist);

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin() -> DnsPersist {
        DnsPersist::configure(r#"{"issuer_domain": "ca.example"}"#).unwrap()
    }

    #[test]
    fn records_authorize_the_named_account_only() {
        let p = plugin();
        let acct = "https://ca/acme/acct/1";
        let record = vec![format!("CA.example; accounturi={acct}; policy=wildcard")];
        assert!(p.authorizes(&record, acct));
        assert!(!p.authorizes(&record, "https://ca/acme/acct/2"));
        let other_ca = vec![format!("elsewhere.example; accounturi={acct}")];
        assert!(!p.authorizes(&other_ca, acct));
        assert!(
            !p.authorizes(&["ca.example".to_string()], acct),
            "no account named"
        );
        assert!(DnsPersist::configure(r#"{"issuer_domain": ""}"#).is_err());
    }
}
