//! finalize's CSR check past the signature: the input is a CertificationRequestInfo, which the
//! harness signs with a fixed Ed25519 key, so every mutation of the subject, the attributes and
//! their extensions (subjectAltName, basicConstraints) reaches the code that reads them. Seeds
//! (corpus/csr_signed) carry that key's public key, which a mutation keeps more often than not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|info: &[u8]| acmegate_fuzz::finalize(&acmegate_fuzz::sign_request_info(info)));
