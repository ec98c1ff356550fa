//! CAA checking (RFC 8659, with the RFC 8657 `accounturi` and `validationmethods` parameters):
//! which RRset is relevant and whether it lets this CA issue, as pure functions over parsed
//! records, plus the thin lookup loop that feeds them from DNS.

use std::fmt;
use std::future::Future;

use hickory_proto::rr::rdata::caa::CAA;

use crate::acme::{ChallengeType, Problem};

use super::resolve::LookupError;
use super::{Va, ValidationRequest};

/// One CAA resource record (RFC 8659 §4.1), with the value in its presentation text form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaRecord {
    /// The Issuer Critical Flag (bit 0, value 128, of the flags octet).
    pub critical: bool,
    pub tag: String,
    pub value: String,
}

impl CaaRecord {
    /// From zone-file fields; only bit 0 (128) of `flags` has a meaning (RFC 8659 §4.1).
    #[cfg(test)]
    pub fn new(flags: u8, tag: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            critical: flags & 0x80 != 0,
            tag: tag.into(),
            value: value.into(),
        }
    }

    fn has_tag(&self, tag: &str) -> bool {
        // RFC 8659 §4.1: "Matching of tag values is case insensitive."
        self.tag.eq_ignore_ascii_case(tag)
    }
}

/// The property as the zone holds it: `evaluate` parses the value text itself (RFC 8659 §4.2
/// and §4.3 grammar, malformed values authorizing nothing). Tags are compared lower-case
/// (RFC 8659 §4.1: matching is case-insensitive).
impl From<&CAA> for CaaRecord {
    fn from(caa: &CAA) -> Self {
        CaaRecord {
            critical: caa.issuer_critical,
            tag: caa.tag.to_ascii_lowercase(),
            value: String::from_utf8_lossy(&caa.value).into_owned(),
        }
    }
}

impl fmt::Display for CaaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = if self.critical { 128 } else { 0 };
        write!(f, "{flags} {} {:?}", self.tag, self.value)
    }
}

/// What CAA needs to know about the issuance being decided.
#[derive(Clone, Copy, Debug)]
pub struct CaaRequest<'a> {
    /// Wildcard certificates consult `issuewild` first (RFC 8659 §4.3).
    pub wildcard: bool,
    /// Compared with an `accounturi` parameter (RFC 8657 §3).
    pub account_uri: &'a str,
    /// Compared with a `validationmethods` parameter (RFC 8657 §4).
    pub method: ChallengeType,
    /// The issuer domain names this CA answers to.
    pub identities: &'a [String],
}

/// The property tags this CA understands; any other tag with the critical flag forbids issuance
/// (RFC 8659 §4.1).
const KNOWN_TAGS: [&str; 3] = ["issue", "issuewild", "iodef"];

/// RFC 8659 §3: the names whose CAA RRsets are consulted, from the FQDN up to (but excluding)
/// the root, in order.
pub fn climb(fqdn: &str) -> Vec<String> {
    let fqdn = fqdn.trim_end_matches('.');
    let mut names = Vec::new();
    let mut rest = fqdn;
    while !rest.is_empty() {
        names.push(rest.to_owned());
        rest = rest.split_once('.').map_or("", |(_, parent)| parent);
    }
    names
}

/// RFC 8659 §3: the relevant RRset is the first non-empty CAA RRset met while climbing from the
/// FQDN toward the root. `lookup` returns one name's RRset (empty when it has none); its
/// errors end the search, since an unknown RRset could have been the relevant one.
pub async fn relevant_rrset<F, Fut, E>(
    fqdn: &str,
    mut lookup: F,
) -> Result<Option<(String, Vec<CaaRecord>)>, E>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Vec<CaaRecord>, E>>,
{
    for name in climb(fqdn) {
        let records = lookup(name.clone()).await?;
        if !records.is_empty() {
            return Ok(Some((name, records)));
        }
    }
    Ok(None)
}

/// Decides issuance from the relevant RRset found at `owner`. `Err` carries a detail that names
/// the record(s) responsible.
pub fn evaluate(owner: &str, records: &[CaaRecord], req: &CaaRequest<'_>) -> Result<(), String> {
    if let Some(unknown) = records
        .iter()
        .find(|r| r.critical && !KNOWN_TAGS.iter().any(|t| r.has_tag(t)))
    {
        return Err(format!(
            "CAA record {unknown} at {owner} has a critical property this CA does not \
             understand, so it may not issue (RFC 8659 §4.1)"
        ));
    }
    // RFC 8659 §4.3: for a wildcard, issuewild properties take precedence over issue ones
    // when present.
    let tag = if req.wildcard && records.iter().any(|r| r.has_tag("issuewild")) {
        "issuewild"
    } else {
        "issue"
    };
    let candidates: Vec<&CaaRecord> = records.iter().filter(|r| r.has_tag(tag)).collect();
    // RFC 8659 §4.2/§4.3: an RRset without the governing property does not restrict issuance.
    if candidates.is_empty() || candidates.iter().any(|r| authorizes(&r.value, req)) {
        return Ok(());
    }
    let listed: Vec<String> = candidates.iter().map(|r| r.to_string()).collect();
    Err(format!(
        "CAA {tag} records at {owner} do not authorize this CA ({}) for this request: {}",
        req.identities.join(", "),
        listed.join("; ")
    ))
}

/// Whether one issue/issuewild value names this CA with parameters that fit the request. A
/// malformed value authorizes nothing (RFC 8659 §4.2).
fn authorizes(value: &str, req: &CaaRequest<'_>) -> bool {
    let Some(issue) = IssueValue::parse(value) else {
        return false;
    };
    let Some(domain) = &issue.domain else {
        // `;` alone: no CA may issue.
        return false;
    };
    if !req
        .identities
        .iter()
        .any(|id| id.trim_end_matches('.').eq_ignore_ascii_case(domain))
    {
        return false;
    }
    // RFC 8657 §3: an accounturi parameter limits issuance to that one account.
    let account_ok = issue
        .param("accounturi")
        .is_none_or(|uri| uri == req.account_uri);
    // RFC 8657 §4: validationmethods lists the ACME methods allowed (unknown labels ignored).
    let method_ok = issue
        .param("validationmethods")
        .is_none_or(|methods| methods.split(',').any(|m| m.trim() == req.method.as_str()));
    account_ok && method_ok
}

/// A parsed `issue-value` (RFC 8659 §4.2): an optional issuer domain name and parameters.
#[derive(Debug, PartialEq, Eq)]
struct IssueValue {
    domain: Option<String>,
    params: Vec<(String, String)>,
}

impl IssueValue {
    fn parse(value: &str) -> Option<IssueValue> {
        let (domain, params) = match value.split_once(';') {
            Some((domain, params)) => (domain, params),
            None => (value, ""),
        };
        let domain = domain.trim_matches([' ', '\t']);
        let domain = if domain.is_empty() {
            None
        } else if is_issuer_domain_name(domain) {
            Some(domain.to_ascii_lowercase())
        } else {
            return None;
        };
        let mut parsed: Vec<(String, String)> = Vec::new();
        for param in params.split(';').map(|p| p.trim_matches([' ', '\t'])) {
            if param.is_empty() {
                continue;
            }
            let (tag, val) = param.split_once('=')?;
            let (tag, val) = (tag.trim_matches([' ', '\t']), val.trim_matches([' ', '\t']));
            if !is_parameter_tag(tag) || !val.bytes().all(is_parameter_value_octet) {
                return None;
            }
            // A repeated parameter is ambiguous; treat the value as malformed.
            if parsed.iter().any(|(t, _)| t.eq_ignore_ascii_case(tag)) {
                return None;
            }
            parsed.push((tag.to_ascii_lowercase(), val.to_owned()));
        }
        Some(IssueValue {
            domain,
            params: parsed,
        })
    }

    fn param(&self, tag: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, v)| v.as_str())
    }
}

/// `issuer-domain-name = label *("." label)`, `label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))`
fn is_issuer_domain_name(s: &str) -> bool {
    s.split('.').all(is_ldh_label)
}

/// `tag = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))`, the same shape as a label.
fn is_parameter_tag(s: &str) -> bool {
    is_ldh_label(s)
}

fn is_ldh_label(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `value = *(%x21-3A / %x3C-7E)`: visible ASCII except `;`.
fn is_parameter_value_octet(b: u8) -> bool {
    matches!(b, 0x21..=0x3A | 0x3C..=0x7E)
}

/// Looks up CAA for a dns identifier and applies [`evaluate`]. Lookup failures refuse issuance
/// (fail closed): RFC 8659 §3 only lets a CA treat an RRset as empty when DNS said so.
pub(super) async fn check(va: &Va, req: &ValidationRequest) -> Result<(), Problem> {
    let fqdn = req.identifier.value.as_str();
    let found = relevant_rrset(fqdn, |name| async move {
        va.dns.caa(&name).await.or_else(|e| match e {
            LookupError::NotFound => Ok(Vec::new()),
            LookupError::Failed(why) => Err(Problem::dns(format!(
                "CAA lookup for {name} failed ({why}); refusing to issue for {fqdn}"
            ))),
        })
    })
    .await?;
    let Some((owner, records)) = found else {
        return Ok(());
    };
    let caa_req = CaaRequest {
        wildcard: req.wildcard,
        account_uri: &req.account_uri,
        method: req.challenge,
        identities: &va.settings.caa_identities,
    };
    evaluate(&owner, &records, &caa_req).map_err(Problem::caa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ACCOUNT: &str = "https://acme.test/acme/acct/1";

    fn identities() -> Vec<String> {
        vec!["ca.example".to_owned(), "Other-Name.Example.".to_owned()]
    }

    fn check(records: &[CaaRecord], wildcard: bool, method: ChallengeType) -> Result<(), String> {
        let ids = identities();
        let req = CaaRequest {
            wildcard,
            account_uri: ACCOUNT,
            method,
            identities: &ids,
        };
        evaluate("example.com", records, &req)
    }

    fn issue(value: &str) -> CaaRecord {
        CaaRecord::new(0, "issue", value)
    }

    #[test]
    fn climbs_from_the_name_to_the_top_level_domain() {
        assert_eq!(
            climb("a.b.example.com."),
            ["a.b.example.com", "b.example.com", "example.com", "com"]
        );
        assert_eq!(climb("localhost"), ["localhost"]);
        assert!(climb("").is_empty());
    }

    #[tokio::test]
    async fn relevant_rrset_is_the_first_non_empty_one_climbing_up() {
        let zone: HashMap<&str, Vec<CaaRecord>> = HashMap::from([
            ("example.com", vec![issue("ca.example")]),
            ("com", vec![issue("elsewhere.example")]),
        ]);
        let mut asked = Vec::new();
        let found = relevant_rrset("www.sub.example.com", |name| {
            asked.push(name.clone());
            std::future::ready(Ok::<_, ()>(
                zone.get(name.as_str()).cloned().unwrap_or_default(),
            ))
        })
        .await
        .unwrap();
        assert_eq!(
            found,
            Some(("example.com".to_owned(), vec![issue("ca.example")]))
        );
        assert_eq!(
            asked,
            ["www.sub.example.com", "sub.example.com", "example.com"]
        );

        let none = relevant_rrset("a.test", |_| std::future::ready(Ok::<_, ()>(Vec::new())))
            .await
            .unwrap();
        assert_eq!(none, None);

        let failed = relevant_rrset("a.test", |_| {
            std::future::ready(Err::<Vec<CaaRecord>, _>("servfail"))
        })
        .await;
        assert_eq!(failed, Err("servfail"));
    }

    #[test]
    fn no_records_or_no_issue_property_allows() {
        assert!(check(&[], false, ChallengeType::Http01).is_ok());
        let only_iodef = [CaaRecord::new(0, "iodef", "mailto:sec@example.com")];
        assert!(check(&only_iodef, false, ChallengeType::Http01).is_ok());
        // A non-critical tag we do not know is ignored.
        let unknown = [CaaRecord::new(0, "tbs", "whatever")];
        assert!(check(&unknown, false, ChallengeType::Http01).is_ok());
    }

    #[test]
    fn issue_must_name_one_of_our_identities() {
        assert!(check(&[issue("ca.example")], false, ChallengeType::Http01).is_ok());
        assert!(check(&[issue("CA.Example")], false, ChallengeType::Http01).is_ok());
        assert!(check(&[issue("other-name.example")], false, ChallengeType::Http01).is_ok());
        assert!(check(
            &[issue("letsencrypt.org"), issue("ca.example")],
            false,
            ChallengeType::Http01
        )
        .is_ok());

        let err = check(&[issue("letsencrypt.org")], false, ChallengeType::Http01).unwrap_err();
        assert!(err.contains("0 issue \"letsencrypt.org\""), "{err}");
        assert!(err.contains("example.com"), "{err}");
        // `;` forbids every CA; a malformed value authorizes nothing.
        assert!(check(&[issue(";")], false, ChallengeType::Http01).is_err());
        assert!(check(
            &[issue("ca.example; bad param")],
            false,
            ChallengeType::Http01
        )
        .is_err());
        assert!(check(&[issue("ca..example")], false, ChallengeType::Http01).is_err());
    }

    #[test]
    fn wildcards_use_issuewild_when_present_else_issue() {
        let both = [
            issue("ca.example"),
            CaaRecord::new(0, "issuewild", "other.ca"),
        ];
        assert!(check(&both, false, ChallengeType::Dns01).is_ok());
        let err = check(&both, true, ChallengeType::Dns01).unwrap_err();
        assert!(err.contains("issuewild"), "{err}");

        let wild_ok = [
            issue("other.ca"),
            CaaRecord::new(0, "IssueWild", "ca.example"),
        ];
        assert!(check(&wild_ok, true, ChallengeType::Dns01).is_ok());
        assert!(check(&wild_ok, false, ChallengeType::Dns01).is_err());

        // No issuewild: the wildcard falls back to issue.
        assert!(check(&[issue("ca.example")], true, ChallengeType::Dns01).is_ok());
        assert!(check(&[issue("other.ca")], true, ChallengeType::Dns01).is_err());
        // Only issuewild: a non-wildcard is unrestricted.
        let only_wild = [CaaRecord::new(0, "issuewild", ";")];
        assert!(check(&only_wild, false, ChallengeType::Dns01).is_ok());
        assert!(check(&only_wild, true, ChallengeType::Dns01).is_err());
    }

    #[test]
    fn accounturi_must_match_the_account() {
        let good = issue(&format!("ca.example; accounturi={ACCOUNT}"));
        assert!(check(&[good], false, ChallengeType::Http01).is_ok());
        let bad = issue("ca.example; accounturi=https://acme.test/acme/acct/2");
        let err = check(&[bad], false, ChallengeType::Http01).unwrap_err();
        assert!(err.contains("acct/2"), "{err}");
        // Duplicated parameters are malformed.
        let twice = issue(&format!(
            "ca.example; accounturi={ACCOUNT}; accounturi={ACCOUNT}"
        ));
        assert!(check(&[twice], false, ChallengeType::Http01).is_err());
    }

    #[test]
    fn validationmethods_must_list_the_challenge() {
        let rec = issue("ca.example; validationmethods=dns-01,tls-alpn-01");
        assert!(check(std::slice::from_ref(&rec), false, ChallengeType::Dns01).is_ok());
        assert!(check(std::slice::from_ref(&rec), false, ChallengeType::TlsAlpn01).is_ok());
        assert!(check(&[rec], false, ChallengeType::Http01).is_err());
        let both = issue(&format!(
            "ca.example;validationmethods=http-01 ; accounturi={ACCOUNT}"
        ));
        assert!(check(&[both], false, ChallengeType::Http01).is_ok());
        // Unknown parameters are ignored.
        let extra = issue("ca.example; policy=ev");
        assert!(check(&[extra], false, ChallengeType::Http01).is_ok());
    }

    #[test]
    fn an_unknown_critical_tag_forbids_issuance() {
        let records = [issue("ca.example"), CaaRecord::new(128, "tbs", "unknown")];
        let err = check(&records, false, ChallengeType::Http01).unwrap_err();
        assert!(err.contains("128 tbs \"unknown\""), "{err}");
        // Known tags may carry the critical flag.
        let records = [CaaRecord::new(128, "issue", "ca.example")];
        assert!(check(&records, false, ChallengeType::Http01).is_ok());
    }

    #[test]
    fn issue_values_parse_per_the_grammar() {
        assert_eq!(
            IssueValue::parse("  Ca.Example ;  a=1;b-c=x:y/z;"),
            Some(IssueValue {
                domain: Some("ca.example".into()),
                params: vec![("a".into(), "1".into()), ("b-c".into(), "x:y/z".into())],
            })
        );
        assert_eq!(
            IssueValue::parse(";"),
            Some(IssueValue {
                domain: None,
                params: vec![]
            })
        );
        assert_eq!(IssueValue::parse("ca.example; -a=1"), None);
        assert_eq!(IssueValue::parse("ca.example; a=x y"), None);
        assert_eq!(IssueValue::parse("ca_example"), None);
    }
}
