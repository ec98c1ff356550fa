//! A challenge validator that approves identifiers on an operator allow-list, without any
//! network check, and refuses every other identifier at newOrder.
//!
//! For trusted networks where proving control over a name is pointless (an internal zone the
//! operator owns) but issuing for names outside it must be impossible.
//!
//! Configuration (JSON):
//!
//! ```json
//! {
//!   "default": ["*.internal.example", "10.0.0.0/8"],
//!   "accounts": { "https://acme.example/acme/acct/7": ["*.team-a.internal.example"] },
//!   "challenge_types": ["http-01", "dns-01", "tls-alpn-01"]
//! }
//! ```
//!
//! An account listed in `accounts` gets its own list instead of `default`. Patterns: an exact
//! name; `*.zone` for any name below `zone` at any depth (and wildcard identifiers below it);
//! an IP address; or an IP network in CIDR form.

use std::collections::BTreeMap;
use std::net::IpAddr;

use acmegate_plugin_sdk::validator::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    default: Vec<String>,
    #[serde(default)]
    accounts: BTreeMap<String, Vec<String>>,
    #[serde(default = "all_challenge_types")]
    challenge_types: Vec<String>,
}

fn all_challenge_types() -> Vec<String> {
    ["http-01", "dns-01", "tls-alpn-01"]
        .map(String::from)
        .to_vec()
}

enum Pattern {
    Exact(String),
    Below(String),
    Network(IpAddr, u8),
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Some((addr, len)) = text.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| format!("bad network {text:?}"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len: u8 = len
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("bad prefix length in {text:?} (0 to {max})"))?;
            return Ok(Self::Network(addr, len));
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(Self::Network(addr, if addr.is_ipv4() { 32 } else { 128 }));
        }
        match text.strip_prefix("*.") {
            Some(zone) if !zone.is_empty() && !zone.contains('*') => Ok(Self::Below(zone.into())),
            None if !text.is_empty() && !text.contains('*') => Ok(Self::Exact(text)),
            _ => Err(format!(
                "bad pattern {text:?}: use a name, *.zone, an IP or a CIDR network"
            )),
        }
    }

    fn matches(&self, identifier: &Identifier) -> bool {
        let value = identifier.value.trim_end_matches('.').to_ascii_lowercase();
        match (self, identifier.kind) {
            (Self::Exact(name), IdentifierType::Dns) => *name == value,
            (Self::Below(zone), IdentifierType::Dns) => {
                // `*.a.zone` and `b.a.zone` are both below `zone`; `zone` itself is not.
                let name = value.strip_prefix("*.").unwrap_or(&value);
                name.strip_suffix(zone.as_str())
                    .is_some_and(|head| head.ends_with('.') && head.len() > 1)
            }
            (Self::Network(net, len), IdentifierType::Ip) => value
                .parse::<IpAddr>()
                .is_ok_and(|addr| in_network(addr, *net, *len)),
            _ => false,
        }
    }
}

fn in_network(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    let (a, n, bits) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let shift = bits - u32::from(len);
    // A /0 network holds everything; shifting a u128 by 128 would overflow.
    shift >= bits || (a >> shift) == (n >> shift)
}

struct Allowlist {
    default: Vec<Pattern>,
    accounts: BTreeMap<String, Vec<Pattern>>,
    challenge_types: Vec<String>,
}

impl Allowlist {
    fn allowed(&self, account: &str, identifier: &Identifier) -> bool {
        let patterns = self.accounts.get(account).unwrap_or(&self.default);
        patterns.iter().any(|p| p.matches(identifier))
    }
}

fn parse_all(patterns: &[String]) -> Result<Vec<Pattern>, String> {
    patterns.iter().map(|p| Pattern::parse(p)).collect()
}

impl ValidatorPlugin for Allowlist {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::ChallengeValidator(ValidatorInfo {
                challenge_types: all_challenge_types(),
                identifier_types: vec![IdentifierType::Dns, IdentifierType::Ip],
                new_order_policy: true,
            }),
            name: "allowlist-validator".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Approves identifiers on an operator allow-list without a network check"
                .into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
        let accounts = config
            .accounts
            .iter()
            .map(|(account, patterns)| Ok((account.clone(), parse_all(patterns)?)))
            .collect::<Result<_, String>>()?;
        Ok(Self {
            default: parse_all(&config.default)?,
            accounts,
            challenge_types: config.challenge_types,
        })
    }

    fn validate(&self, request: ChallengeRequest) -> Result<ValidationOutcome, PluginError> {
        if !self.challenge_types.contains(&request.challenge_type) {
            return Ok(ValidationOutcome::Invalid(problem(
                ProblemType::Unauthorized,
                &request.identifier,
                format!("challenge type {} is not enabled", request.challenge_type),
            )));
        }
        if self.allowed(&request.account, &request.identifier) {
            Ok(ValidationOutcome::Valid)
        } else {
            Ok(ValidationOutcome::Invalid(problem(
                ProblemType::Unauthorized,
                &request.identifier,
                format!(
                    "{} is not on this account's allow-list",
                    request.identifier.value
                ),
            )))
        }
    }

    fn check_new_order(&self, order: OrderRequest) -> Result<PolicyDecision, PluginError> {
        let refused: Vec<Problem> = order
            .identifiers
            .iter()
            .filter(|id| !self.allowed(&order.account, id))
            .map(|id| {
                let detail = format!("{} is not on this account's allow-list", id.value);
                problem(ProblemType::RejectedIdentifier, id, detail)
            })
            .collect();
        Ok(if refused.is_empty() {
            PolicyDecision::Allow
        } else {
            PolicyDecision::Refuse(refused)
        })
    }
}

acmegate_plugin_sdk::validator_plugin!(Allowlist);
