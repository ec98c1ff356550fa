//! An ACME POST body, as the WFE checks it before the signature (`wfe::auth::authenticate`):
//! flattened JWS parse and the protected header rules; then what follows for a request that
//! carries its key in `jwk` (thumbprint, key/algorithm agreement, signature), the JSON payload,
//! and a newAccount payload's externalAccountBinding (RFC 8555 §7.3.4).
#![no_main]

use acmegate::jws::{self, Jws};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|body: &[u8]| {
    let Ok(jws) = Jws::parse(body) else {
        return;
    };
    if jws.check_header().is_err() {
        return;
    }
    if let Some(jwk) = &jws.protected.jwk {
        let _ = jws::thumbprint(jwk);
        let _ = jws.verify(jwk);
    }
    let Ok(payload) = jws.json_payload::<Map<String, Value>>() else {
        return;
    };
    if let (Some(eab), Some(jwk)) = (payload.get("externalAccountBinding"), &jws.protected.jwk) {
        let url = jws.protected.url.as_deref().unwrap_or_default();
        let _ = jws::verify_eab(eab, url, jwk, |_| Some(b"fuzz-eab-hmac-key".to_vec()));
    }
});
