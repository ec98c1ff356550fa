//! newOrder's identifiers under an EAB key's name policy (`authority::orders::create`): the
//! first line is the key's stored `allowed_names` (a JSON array of patterns), the rest the
//! `identifiers` array of the newOrder payload. Normalized with and without local names, then
//! checked against the patterns, and each one's authorization identifier and challenge types.
#![no_main]

use acmegate::acme::identifiers::{
    authorization_identifier, challenge_types, normalize, LocalNames,
};
use acmegate::acme::name_policy::KeyPolicy;
use acmegate::acme::Identifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (patterns, ids) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"[]"[..], data),
    };
    let policy = std::str::from_utf8(patterns)
        .ok()
        .and_then(|p| KeyPolicy::from_stored("fuzz", p, "").ok());
    let Ok(ids) = serde_json::from_slice::<Vec<Identifier>>(ids) else {
        return;
    };
    for local in [LocalNames::Refused, LocalNames::Allowed] {
        let Ok(normalized) = normalize(&ids, local) else {
            continue;
        };
        if let Some(policy) = &policy {
            let _ = policy.check_names(&normalized);
        }
        for id in &normalized {
            let (authz, wildcard) = authorization_identifier(id);
            let _ = challenge_types(&authz, wildcard);
        }
    }
});
