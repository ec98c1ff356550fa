//! A DER CRL as `ca::crl_summary` reads it: the CRL an issuer connector publishes (the real
//! uPKI CA's is a seed) and the gateway's own, whose validity and entries `/ready`, the
//! metrics and the admin API report.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|der: &[u8]| {
    let _ = acmegate::ca::crl_summary(der);
});
