//! dns-01 (RFC 8555 §8.4): the key authorization digest must be published as a TXT record at
//! `_acme-challenge.<name>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::acme::Problem;

use super::resolve::LookupError;
use super::{excerpt, key_authorization_digest, Target, Va, ValidationRequest};

pub(super) async fn validate(
    va: &Va,
    req: &ValidationRequest,
    target: &Target,
) -> Result<(), Problem> {
    let Target::Dns(name) = target else {
        // RFC 8738 §7: dns-01 cannot prove control of an IP address.
        return Err(Problem::malformed(
            "dns-01 cannot validate an ip identifier (RFC 8738 §7)",
        ));
    };
    let record = format!("_acme-challenge.{name}");
    let expected = URL_SAFE_NO_PAD.encode(key_authorization_digest(&req.key_authorization));
    match va.dns.txt(&record).await {
        Ok(values) if values.contains(&expected) => Ok(()),
        Ok(values) => {
            let found: Vec<String> = values.iter().take(5).map(|v| excerpt(v)).collect();
            Err(Problem::unauthorized(format!(
                "incorrect TXT record at {record}: expected {expected:?}, found {}{}",
                found.join(", "),
                if values.len() > found.len() {
                    ", ..."
                } else {
                    ""
                }
            )))
        }
        Err(LookupError::NotFound) => Err(Problem::unauthorized(format!(
            "no TXT record found at {record}"
        ))),
        Err(LookupError::Failed(why)) => Err(Problem::dns(format!(
            "DNS lookup of TXT records at {record} failed: {why}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::{ChallengeType, Identifier, ProblemType};
    use crate::va::test_support::{request, settings};
    use acmegate_testkit::dns::TestDnsServer;

    const KEY_AUTHZ: &str = "tok.thumb";

    fn digest() -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            KEY_AUTHZ.as_bytes(),
        ))
    }

    async fn setup() -> (TestDnsServer, Va) {
        let server = TestDnsServer::start().await.unwrap();
        let va = Va::new(settings(&server, 0, 0)).unwrap();
        (server, va)
    }

    fn dns01(name: &str) -> ValidationRequest {
        request(Identifier::dns(name), ChallengeType::Dns01, KEY_AUTHZ)
    }

    #[tokio::test]
    async fn valid_when_any_txt_value_is_the_digest() {
        let (server, va) = setup().await;
        server.add_txt("_acme-challenge.ok.test", "unrelated");
        server.add_txt("_acme-challenge.ok.test", &digest());
        va.validate(&dns01("ok.test")).await.unwrap();
        va.validate(&dns01("OK.test.")).await.unwrap();
    }

    #[tokio::test]
    async fn wrong_value_is_unauthorized_and_names_what_was_found() {
        let (server, va) = setup().await;
        server.add_txt("_acme-challenge.wrong.test", "not-the-digest");
        let p = va.validate(&dns01("wrong.test")).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Unauthorized);
        assert!(p.detail.contains("\"not-the-digest\""), "{}", p.detail);
        assert!(
            p.detail.contains("_acme-challenge.wrong.test"),
            "{}",
            p.detail
        );

        // Fixing the record is seen on the next attempt (no caching).
        server.clear_txt("_acme-challenge.wrong.test");
        server.add_txt("_acme-challenge.wrong.test", &digest());
        va.validate(&dns01("wrong.test")).await.unwrap();
    }

    #[tokio::test]
    async fn missing_record_is_unauthorized_and_servfail_is_dns() {
        let (server, va) = setup().await;
        let p = va.validate(&dns01("missing.test")).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Unauthorized);
        assert!(p.detail.starts_with("no TXT record"), "{}", p.detail);

        server.set_servfail("_acme-challenge.broken.test");
        let p = va.validate(&dns01("broken.test")).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Dns);
    }

    #[tokio::test]
    async fn ip_identifiers_are_refused() {
        let (_server, va) = setup().await;
        let req = request(
            Identifier::ip("127.0.0.1".parse().unwrap()),
            ChallengeType::Dns01,
            KEY_AUTHZ,
        );
        let p = va.validate(&req).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Malformed);
    }
}
