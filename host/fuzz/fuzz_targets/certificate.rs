//! A DER certificate as `ca::certificate_info` reads it: the leaf an issuer plugin returns
//! (checked against the CSR's key and the order's names before it is stored), the CA files a
//! replica loads, and the certificates the admin API looks up. Serial, key, subject CN and
//! units, SANs, authority key identifier and validity.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|der: &[u8]| {
    let _ = acmegate::ca::certificate_info(der);
});
