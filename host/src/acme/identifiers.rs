//! Identifier rules for newOrder: DNS name syntax (one leading wildcard label at most), IP
//! addresses (RFC 8738), normalisation, and which challenges each kind of identifier may use.

use std::net::IpAddr;

use super::problem::{Problem, ProblemType};
use super::types::{ChallengeType, Identifier, IdentifierType};

/// Most identifiers one order may carry; more is a `rejectedIdentifier`-free `malformed`.
pub const MAX_IDENTIFIERS: usize = 100;

/// Whether names that only mean something on a local network may be issued: single-label
/// names (`printer`) and names under `localhost`. A profile decides (`allow_local_names`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalNames {
    Refused,
    Allowed,
}

impl LocalNames {
    pub fn allowed_if(allowed: bool) -> LocalNames {
        if allowed {
            LocalNames::Allowed
        } else {
            LocalNames::Refused
        }
    }
}

/// Checks and normalises the identifiers of a newOrder (RFC 8555 §7.4): lower-cases DNS names,
/// puts IPs in canonical form, removes duplicates, and refuses what cannot be issued, with one
/// subproblem per refused identifier (§6.7.1).
pub fn normalize(ids: &[Identifier], local: LocalNames) -> Result<Vec<Identifier>, Problem> {
    if ids.is_empty() {
        return Err(Problem::malformed("newOrder needs at least one identifier"));
    }
    if ids.len() > MAX_IDENTIFIERS {
        return Err(Problem::malformed(format!(
            "an order may have at most {MAX_IDENTIFIERS} identifiers"
        )));
    }
    let mut out = Vec::with_capacity(ids.len());
    let mut subs = Vec::new();
    for id in ids {
        match normalize_one(id, local) {
            Ok(n) => {
                if !out.contains(&n) {
                    out.push(n)
                }
            }
            Err(p) => subs.push(p.with_identifier(id.clone())),
        }
    }
    match subs.len() {
        0 => Ok(out),
        1 => Err(subs.remove(0)),
        _ => {
            let kind = if subs.iter().all(|s| s.kind == subs[0].kind) {
                subs[0].kind
            } else {
                ProblemType::Compound
            };
            Err(Problem::from_subproblems(
                kind,
                "some identifiers cannot be issued",
                subs,
            ))
        }
    }
}

fn normalize_one(id: &Identifier, local: LocalNames) -> Result<Identifier, Problem> {
    match id.kind {
        IdentifierType::Ip => {
            let ip: IpAddr = id.value.parse().map_err(|_| {
                Problem::malformed(format!("{:?} is not an IP address (RFC 8738)", id.value))
            })?;
            Ok(Identifier::ip(ip))
        }
        IdentifierType::Dns => {
            let name = id.value.to_ascii_lowercase();
            check_dns_name(&name)?;
            check_not_reserved(&name, local)?;
            Ok(Identifier::dns(name))
        }
    }
}

/// DNS name syntax: LDH labels of 1-63 octets, at most 253 in all, no trailing dot, not an IP
/// literal, and `*` only as the whole first label of a name with at least two more labels.
pub(crate) fn check_dns_name(name: &str) -> Result<(), Problem> {
    let bad = |why: &str| {
        Problem::rejected_identifier(format!("{name:?} is not a valid DNS name: {why}"))
    };
    if name.is_empty() || name.len() > 253 {
        return Err(bad("length must be 1 to 253"));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(Problem::malformed(format!(
            "{name:?} is an IP address; send it as an \"ip\" identifier (RFC 8738)"
        )));
    }
    let (wild, base) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let labels: Vec<&str> = base.split('.').collect();
    if wild && labels.len() < 2 {
        return Err(bad("a wildcard needs at least two labels after \"*.\""));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(bad(
                "labels must be 1 to 63 characters (no empty label or trailing dot)",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(
                "only letters, digits and '-' are allowed (use the A-label form)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("labels must not start or end with '-'"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("the last label must not be all digits"));
    }
    Ok(())
}

/// Refuses names that no certificate of an internal CA should carry, whatever the CA behind
/// the gateway would sign (the uPKI CA refuses bare `localhost` but signs `www.localhost`,
/// `x.invalid` and single-label names): names under `invalid`, which never resolves, and
/// unless the profile allows local names, names under `localhost` and single-label names,
/// which mean a different host in every search domain.
fn check_not_reserved(name: &str, local: LocalNames) -> Result<(), Problem> {
    let base = name.strip_prefix("*.").unwrap_or(name);
    let tld = base.rsplit_once('.').map_or(base, |(_, tld)| tld);
    if tld == "invalid" {
        return Err(Problem::rejected_identifier(format!(
            "{name:?} is under the reserved name \"invalid\" (RFC 6761) and names no host"
        )));
    }
    if local == LocalNames::Allowed {
        return Ok(());
    }
    let advice = "(a profile with allow_local_names = true issues such names)";
    if tld == "localhost" {
        return Err(Problem::rejected_identifier(format!(
            "{name:?} is a local name under \"localhost\" (RFC 6761) and names no one host {advice}"
        )));
    }
    if !base.contains('.') {
        return Err(Problem::rejected_identifier(format!(
            "{name:?} is a single-label name; certificates name fully qualified names only {advice}"
        )));
    }
    Ok(())
}

/// Splits an order identifier into the authorization's identifier and its wildcard flag
/// (RFC 8555 §7.1.4: the authorization names the base domain with `wildcard: true`).
pub fn authorization_identifier(id: &Identifier) -> (Identifier, bool) {
    match id.value.strip_prefix("*.") {
        Some(base) if id.kind == IdentifierType::Dns => (Identifier::dns(base), true),
        _ => (id.clone(), false),
    }
}

/// Challenges offered for an authorization: wildcards only with dns-01 (RFC 8555 §7.1.3), IP
/// addresses without dns-01 (RFC 8738 §7).
pub fn challenge_types(id: &Identifier, wildcard: bool) -> Vec<ChallengeType> {
    match (id.kind, wildcard) {
        (IdentifierType::Dns, true) => vec![ChallengeType::Dns01],
        (IdentifierType::Dns, false) => ChallengeType::ALL.to_vec(),
        (IdentifierType::Ip, _) => vec![ChallengeType::Http01, ChallengeType::TlsAlpn01],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_dedups() {
        let ids = [
            Identifier::dns("WWW.Example.ORG"),
            Identifier::dns("www.example.org"),
            Identifier {
                kind: IdentifierType::Ip,
                value: "2001:db8:0::1".into(),
            },
        ];
        let out = normalize(&ids, LocalNames::Refused).unwrap();
        assert_eq!(
            out,
            vec![
                Identifier::dns("www.example.org"),
                Identifier::ip("2001:db8::1".parse().unwrap())
            ]
        );
    }

    #[test]
    fn refuses_bad_names_with_subproblems() {
        let ids = [
            Identifier::dns("ok.example"),
            Identifier::dns("bad_name.example"),
            Identifier::dns("a..b"),
        ];
        let err = normalize(&ids, LocalNames::Refused).unwrap_err();
        assert_eq!(err.kind, ProblemType::RejectedIdentifier);
        assert_eq!(err.subproblems.len(), 2);
        assert_eq!(
            err.subproblems[0].identifier.as_ref().unwrap().value,
            "bad_name.example"
        );
        for bad in [
            "*.com",
            "a.*.example",
            "example.",
            "-a.example",
            "x.123",
            "",
            "*",
        ] {
            assert!(
                normalize(&[Identifier::dns(bad)], LocalNames::Refused).is_err(),
                "{bad}"
            );
        }
        assert!(normalize(&[Identifier::dns("10.0.0.1")], LocalNames::Refused).is_err());
        assert!(normalize(
            &[Identifier {
                kind: IdentifierType::Ip,
                value: "10.0.0.256".into()
            }],
            LocalNames::Refused
        )
        .is_err());
        assert!(normalize(&[], LocalNames::Refused).is_err());
    }

    #[test]
    fn refuses_reserved_and_single_label_names() {
        for reserved in [
            "localhost",
            "LocalHost",
            "www.localhost",
            "*.localhost",
            "*.app.localhost",
            "invalid",
            "host.invalid",
            "com",
            "printer",
        ] {
            let err = normalize(&[Identifier::dns(reserved)], LocalNames::Refused).unwrap_err();
            assert_eq!(err.kind, ProblemType::RejectedIdentifier, "{reserved}");
            assert!(
                err.detail.contains(&reserved.to_ascii_lowercase()),
                "{}",
                err.detail
            );
        }
        for local in [
            "localhost",
            "www.localhost",
            "*.app.localhost",
            "printer",
            "com",
        ] {
            assert!(
                normalize(&[Identifier::dns(local)], LocalNames::Allowed).is_ok(),
                "{local}"
            );
        }
        for never in ["invalid", "host.invalid", "*.x.invalid"] {
            assert!(
                normalize(&[Identifier::dns(never)], LocalNames::Allowed).is_err(),
                "{never}"
            );
        }
        for fine in [
            "localhost.example.org",
            "invalid.example.org",
            "*.example.org",
            "a.test",
        ] {
            assert!(
                normalize(&[Identifier::dns(fine)], LocalNames::Refused).is_ok(),
                "{fine}"
            );
        }
    }

    #[test]
    fn wildcards_and_challenge_offers() {
        let (id, wild) = authorization_identifier(&Identifier::dns("*.example.org"));
        assert_eq!((id.value.as_str(), wild), ("example.org", true));
        assert_eq!(challenge_types(&id, true), vec![ChallengeType::Dns01]);
        assert_eq!(challenge_types(&id, false).len(), 3);
        let ip = Identifier::ip("127.0.0.1".parse().unwrap());
        assert!(!challenge_types(&ip, false).contains(&ChallengeType::Dns01));
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any identifier value, of either type: accepted (then normalized: lower case,
            /// no trailing dot) or refused with a rejectedIdentifier-style problem naming it.
            #[test]
            fn any_identifier_is_normalized_or_refused_by_name(value in "\\PC{0,80}", ip in any::<bool>()) {
                let id = if ip {
                    Identifier { kind: IdentifierType::Ip, value: value.clone() }
                } else {
                    Identifier::dns(value.clone())
                };
                match normalize(std::slice::from_ref(&id), LocalNames::Refused) {
                    Ok(ids) => {
                        prop_assert_eq!(ids.len(), 1);
                        prop_assert_eq!(ids[0].value.to_lowercase(), ids[0].value.clone());
                        prop_assert!(!ids[0].value.ends_with('.'));
                    }
                    Err(p) => prop_assert!(!p.detail.is_empty() || !p.subproblems.is_empty()),
                }
            }
        }
    }
}
