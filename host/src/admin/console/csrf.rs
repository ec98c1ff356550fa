//! Cross-site request forgery defence for the console's forms. mTLS alone does not stop it:
//! a browser presents the operator's client certificate to the admin listener even when a
//! page of another site makes it post there. So every console POST must carry
//!
//! - a form token that only a page of the console can know: an HMAC, under a key derived from
//!   the CA key secret, of the SHA-256 of the client certificate it was served to (bound to the
//!   operator's certificate, valid on every replica, nothing stored);
//! - and browser evidence of coming from the console itself: `Sec-Fetch-Site: same-origin`
//!   and/or an `Origin` equal to the listener's own, at least one of the two present.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use http::HeaderMap;
use ring::hmac;

use super::super::{ApiError, Caller};

/// Name of the hidden form field that carries the token.
pub const FIELD: &str = "form_token";

/// What a token signs besides the certificate, so that it can be used for nothing else.
const LABEL: &[u8] = b"acmegate console form v1:";

fn message(caller: &Caller) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, &caller.certificate);
    [LABEL, digest.as_ref()].concat()
}

/// The token the console's forms carry for `caller`.
pub fn token(key: &hmac::Key, caller: &Caller) -> String {
    B64.encode(hmac::sign(key, &message(caller)).as_ref())
}

/// Accepts a POST when its token is `caller`'s and the browser says it came from the
/// console's own origin (`authority` is the `host:port` the request was sent to).
pub fn check(
    key: &hmac::Key,
    caller: &Caller,
    presented: Option<&str>,
    headers: &HeaderMap,
    authority: Option<&str>,
) -> Result<(), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let site = header("sec-fetch-site");
    let origin = header("origin");
    if let Some(site) = site {
        if site != "same-origin" {
            return Err(refused(format!(
                "the browser says this form was posted from another site (Sec-Fetch-Site: {site})"
            )));
        }
    }
    if let Some(origin) = origin {
        let own = authority.map(|a| format!("https://{a}"));
        if own.as_deref() != Some(origin) {
            return Err(refused(format!(
                "the form was posted from {origin:?}, not from this console"
            )));
        }
    }
    if site.is_none() && origin.is_none() {
        return Err(refused(
            "the request carries neither Origin nor Sec-Fetch-Site; console forms are for browsers"
                .into(),
        ));
    }
    let genuine = presented
        .and_then(|t| B64.decode(t).ok())
        .is_some_and(|tag| hmac::verify(key, &message(caller), &tag).is_ok());
    if !genuine {
        return Err(refused(
            "the form token is missing or not this certificate's; reload the page and try again"
                .into(),
        ));
    }
    Ok(())
}

fn refused(detail: String) -> ApiError {
    ApiError::new(http::StatusCode::FORBIDDEN, "forged_request", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(cert: &[u8]) -> Caller {
        Caller {
            role: crate::admin::Role::Admin,
            subject: "alice".into(),
            serial: "01".into(),
            certificate: cert.to_vec(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_same_origin_posts_with_the_callers_token_pass() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"test form key");
        let alice = caller(b"alice's certificate");
        let good = token(&key, &alice);
        let host = Some("localhost:9443");
        let mallory = token(&key, &caller(b"mallory"));
        let same = headers(&[
            ("origin", "https://localhost:9443"),
            ("sec-fetch-site", "same-origin"),
        ]);
        check(&key, &alice, Some(&good), &same, host).unwrap();
        // Either browser signal alone suffices.
        check(
            &key,
            &alice,
            Some(&good),
            &headers(&[("sec-fetch-site", "same-origin")]),
            host,
        )
        .unwrap();
        check(
            &key,
            &alice,
            Some(&good),
            &headers(&[("origin", "https://localhost:9443")]),
            host,
        )
        .unwrap();
        let refusals = [
            (
                Some(good.as_str()),
                headers(&[("origin", "https://evil.example")]),
            ),
            (
                Some(good.as_str()),
                headers(&[("sec-fetch-site", "cross-site")]),
            ),
            (
                Some(good.as_str()),
                headers(&[("sec-fetch-site", "same-site")]),
            ),
            (Some(good.as_str()), headers(&[])),
            (None, same.clone()),
            (Some("00"), same.clone()),
            (Some("not base64!"), same.clone()),
            // Another certificate's token is not this one's.
            (Some(mallory.as_str()), same.clone()),
        ];
        for (presented, h) in refusals {
            let e = check(&key, &alice, presented, &h, host).unwrap_err();
            assert_eq!(e.status, http::StatusCode::FORBIDDEN, "{presented:?} {h:?}");
            assert_eq!(e.error, "forged_request");
        }
        // A token of another key (another PKI) is refused too.
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"other key");
        assert!(check(&key, &alice, Some(&token(&other, &alice)), &same, host).is_err());
    }
}
