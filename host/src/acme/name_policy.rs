//! Name patterns of an EAB key's policy: which identifiers the accounts bound with that key may
//! order. An empty list allows every name.
//!
//! Patterns: `host.example` (that name only), `*.example` (every name under `example`, at any
//! depth, wildcards included, but not `example` itself), `192.0.2.7` (that address),
//! `10.0.0.0/8` (addresses in that network).

use std::net::IpAddr;

use super::{Identifier, IdentifierType, Problem, ProblemType};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamePattern {
    Exact(String),
    /// The zone under `*.` (lower case, without the dot).
    Under(String),
    Address(IpAddr),
    Network(IpAddr, u8),
}

impl NamePattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Some((addr, bits)) = text.split_once('/') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("{text:?}: not an address/prefix"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{text:?}: prefix length must be 0..={max}"))?;
            return Ok(Self::Network(addr, bits));
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(Self::Address(addr));
        }
        let (under, name) = match text.strip_prefix("*.") {
            Some(zone) => (true, zone),
            None => (false, text.as_str()),
        };
        if super::identifiers::check_dns_name(name).is_err() || name.contains('*') {
            return Err(format!(
                "{text:?} is not a DNS name, *.zone, IP address or network"
            ));
        }
        Ok(if under {
            Self::Under(name.to_string())
        } else {
            Self::Exact(name.to_string())
        })
    }

    pub fn matches(&self, id: &Identifier) -> bool {
        match (self, id.kind) {
            (Self::Exact(name), IdentifierType::Dns) => id.value.eq_ignore_ascii_case(name),
            (Self::Under(zone), IdentifierType::Dns) => {
                let value = id.value.to_ascii_lowercase();
                value
                    .strip_suffix(zone.as_str())
                    .is_some_and(|head| head.ends_with('.'))
            }
            (Self::Address(addr), IdentifierType::Ip) => id.value.parse() == Ok(*addr),
            (Self::Network(net, bits), IdentifierType::Ip) => id
                .value
                .parse::<IpAddr>()
                .is_ok_and(|addr| in_network(addr, *net, *bits)),
            _ => false,
        }
    }
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, n, width) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= width || (a >> shift) == (n >> shift)
}

/// Parses every pattern; the first bad one is the error.
pub fn parse_all(patterns: &[String]) -> Result<Vec<NamePattern>, String> {
    patterns.iter().map(|p| NamePattern::parse(p)).collect()
}

/// `None` when every identifier matches some pattern (or there are none); else a
/// `rejectedIdentifier` problem with one subproblem per identifier outside the policy.
pub fn check(patterns: &[NamePattern], ids: &[Identifier], whose: &str) -> Option<Problem> {
    if patterns.is_empty() {
        return None;
    }
    let refused: Vec<Problem> = ids
        .iter()
        .filter(|id| !patterns.iter().any(|p| p.matches(id)))
        .map(|id| {
            Problem::rejected_identifier(format!(
                "{} is outside the names {whose} allows",
                id.value
            ))
            .with_identifier(id.clone())
        })
        .collect();
    (!refused.is_empty()).then(|| {
        Problem::from_subproblems(
            ProblemType::RejectedIdentifier,
            format!(
                "{} identifier(s) are outside the names {whose} allows",
                refused.len()
            ),
            refused,
        )
    })
}

/// The policy of one EAB key, as newOrder applies it to the accounts bound with that key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    pub kid: String,
    /// Empty allows every name.
    pub names: Vec<NamePattern>,
    /// The one profile the key's orders get, if pinned.
    pub profile: Option<String>,
}

impl KeyPolicy {
    /// From the stored form: `allowed_names` a JSON array of patterns, `profile` empty for any.
    pub fn from_stored(kid: &str, allowed_names: &str, profile: &str) -> Result<Self, String> {
        let patterns: Vec<String> = serde_json::from_str(allowed_names)
            .map_err(|e| format!("allowed names of EAB key {kid} are unreadable: {e}"))?;
        Ok(Self {
            kid: kid.to_owned(),
            names: parse_all(&patterns)?,
            profile: (!profile.is_empty()).then(|| profile.to_owned()),
        })
    }

    /// The profile an order gets: the pinned one (asking for another is refused), else the
    /// requested one, else `default`.
    pub fn profile(&self, requested: Option<String>, default: &str) -> Result<String, Problem> {
        match (&self.profile, requested) {
            (Some(pinned), Some(asked)) if *pinned != asked => {
                Err(Problem::invalid_profile(format!(
                    "accounts of EAB key {} may only use profile {pinned:?}",
                    self.kid
                )))
            }
            (Some(pinned), _) => Ok(pinned.clone()),
            (None, asked) => Ok(asked.unwrap_or_else(|| default.to_owned())),
        }
    }

    /// `Err` with one subproblem per identifier outside the key's names.
    pub fn check_names(&self, ids: &[Identifier]) -> Result<(), Problem> {
        match check(&self.names, ids, &format!("EAB key {}", self.kid)) {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_policy_pins_the_profile_and_limits_names() {
        let pinned = KeyPolicy::from_stored("k1", r#"["*.team-a.example"]"#, "short").unwrap();
        assert_eq!(pinned.profile(None, "default").unwrap(), "short");
        assert_eq!(
            pinned.profile(Some("short".into()), "default").unwrap(),
            "short"
        );
        let refused = pinned
            .profile(Some("default".into()), "default")
            .unwrap_err();
        assert_eq!(refused.kind, ProblemType::InvalidProfile);
        assert!(pinned.check_names(&[dns("a.team-a.example")]).is_ok());
        assert!(pinned.check_names(&[dns("a.team-b.example")]).is_err());
        let open = KeyPolicy::from_stored("k2", "[]", "").unwrap();
        assert_eq!(open.profile(Some("x".into()), "default").unwrap(), "x");
        assert_eq!(open.profile(None, "default").unwrap(), "default");
        assert!(open.check_names(&[dns("anything.example")]).is_ok());
        assert!(KeyPolicy::from_stored("k3", r#"["bad pattern"]"#, "").is_err());
        assert!(KeyPolicy::from_stored("k4", "not json", "").is_err());
    }

    fn dns(v: &str) -> Identifier {
        Identifier::dns(v)
    }

    fn ip(v: &str) -> Identifier {
        Identifier::ip(v.parse().unwrap())
    }

    #[test]
    fn patterns_match_what_they_say() {
        let p = |s: &str| NamePattern::parse(s).unwrap();
        assert!(p("Host.Example.").matches(&dns("host.example")));
        assert!(!p("host.example").matches(&dns("a.host.example")));
        let under = p("*.corp.example");
        assert!(under.matches(&dns("a.corp.example")));
        assert!(under.matches(&dns("a.b.corp.example")));
        assert!(under.matches(&dns("*.corp.example")));
        assert!(!under.matches(&dns("corp.example")));
        assert!(!under.matches(&dns("evilcorp.example")));
        assert!(p("192.0.2.7").matches(&ip("192.0.2.7")));
        assert!(!p("192.0.2.7").matches(&dns("192.0.2.7.example")));
        let net = p("10.1.0.0/16");
        assert!(net.matches(&ip("10.1.255.3")));
        assert!(!net.matches(&ip("10.2.0.1")));
        assert!(!net.matches(&ip("::1")));
        assert!(p("2001:db8::/32").matches(&ip("2001:db8:1::5")));
        assert!(p("0.0.0.0/0").matches(&ip("203.0.113.9")));
        for bad in ["*", "a.*.example", "10.0.0.0/33", "not a name", "::/129"] {
            assert!(NamePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_names_each_refused_identifier() {
        let patterns = parse_all(&["*.team-a.example".into(), "10.0.0.0/8".into()]).unwrap();
        assert!(check(
            &patterns,
            &[dns("x.team-a.example"), ip("10.0.0.1")],
            "key k"
        )
        .is_none());
        let problem = check(
            &patterns,
            &[
                dns("x.team-a.example"),
                dns("x.team-b.example"),
                ip("192.0.2.1"),
            ],
            "key k",
        )
        .unwrap();
        assert_eq!(problem.kind, ProblemType::RejectedIdentifier);
        assert_eq!(problem.subproblems.len(), 2);
        assert_eq!(
            problem.subproblems[0].identifier,
            Some(dns("x.team-b.example"))
        );
        assert!(check(&[], &[dns("anything.example")], "key k").is_none());
    }
}
