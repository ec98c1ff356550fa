//! A finalize request's CSR, as `authority::orders::check_csr` checks it for an order of
//! `a.example` and 10.0.0.1 under the built-in default profile: base64url, DER structure, key
//! policy, self-signature, requested names. Mutated requests mostly stop at the signature;
//! `csr_signed` reaches what follows it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|der: &[u8]| acmegate_fuzz::finalize(der));
