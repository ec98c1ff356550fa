//! A JWK as a request's `jwk` header carries it: the RFC 7638 thumbprint, and a verifier built
//! for every allowed algorithm (member decoding, key type and curve agreement, RSA size, EC
//! point checks) through `Jws::verify` on a request that names the key.
#![no_main]

use acmegate::jws::{self, Jws, ALLOWED_ALGS};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(jwk) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return;
    };
    let _ = jws::thumbprint(&jwk);
    for alg in ALLOWED_ALGS {
        let header = json!({"alg": alg, "url": "https://gw/acme/new-account", "jwk": jwk});
        let body = json!({
            "protected": B64.encode(header.to_string()),
            "payload": "",
            "signature": B64.encode([0u8; 64]),
        });
        let jws = Jws::parse(body.to_string().as_bytes()).expect("a well-formed flattened JWS");
        // What is fuzzed is reading the key; the zero signature is no forgery test (a
        // small-order Ed25519 key may accept it, which harms only its own account).
        let _ = jws.verify(&jwk);
    }
});
