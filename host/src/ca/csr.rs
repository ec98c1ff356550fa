//! PKCS#10 certification requests (RFC 2986): parsing, proof of possession, requested names.

use std::net::IpAddr;

use bcder::{BitString, Tag};
use x509_certificate::rfc3280::Name;
use x509_certificate::rfc5280::Extensions;
use x509_certificate::rfc5652::Attribute;

use super::decode::{self, decode, parse_spki};
use super::{issue, oids, signature, CaError, Csr, Profile};

fn bad(msg: impl Into<String>) -> CaError {
    CaError::BadCsr(msg.into())
}

/// Whether parsing checks a CSR's proof of possession (its self-signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Possession {
    /// A CSR as a client sent it: its signature must verify.
    Verify,
    /// A CSR this gateway verified when it accepted it and stored it since.
    VerifiedOnReceipt,
}

/// See [`super::parse_csr`], [`super::parse_csr_for`] (with `profile`) and
/// [`super::parse_stored_csr`].
pub fn parse(
    der: &[u8],
    profile: Option<&Profile>,
    possession: Possession,
) -> Result<Csr, CaError> {
    // CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, signature BIT STRING }
    let (info, algorithm, sig) = decode(der, |cons| {
        cons.take_sequence(|cons| {
            let info = cons.capture_one()?;
            let algorithm = cons.capture_one()?;
            let sig = BitString::take_from(cons)?;
            Ok((info, algorithm, sig))
        })
    })
    .map_err(|e| bad(format!("malformed CSR: {e}")))?;
    if sig.unused() != 0 {
        return Err(bad("signature bit string with unused bits"));
    }

    let (version, subject, spki_der, attributes) = decode(info.as_slice(), |cons| {
        cons.take_sequence(|cons| {
            let version = cons.take_primitive_if(Tag::INTEGER, |p| p.to_u8())?;
            let subject = Name::take_from(cons)?;
            let spki = cons.capture_one()?;
            // RFC 2986 §4.1 makes [0] mandatory; some encoders drop it when empty.
            let attributes = cons
                .take_opt_constructed_if(Tag::CTX_0, |cons| {
                    let mut all = Vec::new();
                    while let Some(a) = Attribute::take_opt_from(cons)? {
                        all.push(a);
                    }
                    Ok(all)
                })?
                .unwrap_or_default();
            Ok((version, subject, spki.as_slice().to_vec(), attributes))
        })
    })
    .map_err(|e| bad(format!("malformed CSR info: {e}")))?;
    if version != 0 {
        return Err(bad(format!("unknown CSR version {version}")));
    }

    // RFC 8555 §7.4: the CSR's signature proves possession of the key to be certified.
    let spki = parse_spki(&spki_der).map_err(bad)?;
    if let Some(profile) = profile {
        issue::check_profile_key(&spki.kind().map_err(CaError::KeyPolicy)?, profile)?;
    }
    if possession == Possession::Verify {
        signature::verify(
            &spki,
            algorithm.as_slice(),
            info.as_slice(),
            &sig.octet_bytes(),
        )
        .map_err(|e| bad(format!("CSR signature: {e}")))?;
    }

    let mut dns_names = Vec::new();
    let mut ip_addrs = Vec::new();
    let common_name = match subject.iter_common_name().next() {
        Some(cn) => Some(
            cn.to_string()
                .map_err(|e| bad(format!("unreadable common name: {e}")))?,
        ),
        None => None,
    };
    if let Some(cn) = &common_name {
        if let Ok(ip) = cn.parse::<IpAddr>() {
            ip_addrs.push(ip);
        } else if looks_like_dns_name(cn) {
            dns_names.push(cn.to_ascii_lowercase());
        }
    }

    for attribute in attributes
        .iter()
        .filter(|a| a.typ == oids::EXTENSION_REQUEST)
    {
        for value in &attribute.values {
            let exts = decode(value.as_slice(), Extensions::take_from)
                .map_err(|e| bad(format!("malformed extensionRequest: {e}")))?;
            for ext in decode::from_extensions(&exts) {
                if ext.id == oids::SUBJECT_ALT_NAME {
                    let names = decode::parse_alt_names(&ext.value).map_err(bad)?;
                    if names.other > 0 {
                        return Err(bad(
                            "subjectAltName holds names other than dNSName and iPAddress",
                        ));
                    }
                    dns_names.extend(names.dns);
                    ip_addrs.extend(names.ips);
                } else if ext.id == oids::BASIC_CONSTRAINTS
                    && decode::basic_constraints_ca(&ext.value).map_err(bad)?
                {
                    return Err(bad("CSR asks for a CA certificate (basicConstraints cA)"));
                }
            }
        }
    }
    dedup(&mut dns_names);
    dedup(&mut ip_addrs);

    Ok(Csr {
        common_name,
        dns_names,
        ip_addrs,
        spki_der,
        der: der.to_vec(),
    })
}

/// Keeps the first occurrence of each element, in order.
fn dedup<T: PartialEq>(items: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    *items = seen;
}

/// Whether a common name reads as a host name (LDH labels, optionally a leading `*.`), so that a
/// CN like "My Laptop" is not mistaken for an identifier.
pub fn looks_like_dns_name(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{csr_der, csr_with, KeyType};
    use super::super::{parse_csr, CaError};
    use super::*;

    fn assert_bad(r: Result<Csr, CaError>) {
        assert!(matches!(r, Err(CaError::BadCsr(_))), "{r:?}");
    }

    #[test]
    fn openssl_csrs_of_every_key_type_verify() {
        for kt in [
            KeyType::Rsa(2048),
            KeyType::Rsa(1024),
            KeyType::P256,
            KeyType::P384,
            KeyType::Ed25519,
        ] {
            let der = csr_der(
                kt,
                Some("Www.Example.com"),
                &["Www.Example.com", "b.example.com"],
            );
            let csr = parse_csr(&der).unwrap_or_else(|e| panic!("{kt:?}: {e}"));
            assert_eq!(
                csr.dns_names,
                vec!["www.example.com", "b.example.com"],
                "{kt:?}"
            );
            assert_eq!(csr.common_name.as_deref(), Some("Www.Example.com"));
            assert!(csr.ip_addrs.is_empty());
            assert_eq!(csr.der, der);
        }
    }

    #[test]
    fn only_a_stored_csr_skips_the_signature_check() {
        let der = csr_der(KeyType::P256, None, &["a.example.com"]);
        // Flip a bit of the signature (the last byte of the DER).
        let mut forged = der.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_bad(parse_csr(&forged));
        // What finalize verified and stored reads back with its names, without a second
        // verification; everything else about it is still parsed and checked.
        let stored = super::super::parse_stored_csr(&forged).expect("stored CSR");
        assert_eq!(stored.dns_names, vec!["a.example.com"]);
        assert_bad(super::super::parse_stored_csr(&forged[..forged.len() - 8]));
    }

    /// DER type-length-value with the definite length form (X.690 §8.1.3).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let len = content.len().to_be_bytes();
        let len = &len[len.iter().position(|b| *b != 0).unwrap_or(len.len() - 1)..];
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x80 | len.len() as u8);
            out.extend_from_slice(len);
        }
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn key_policy_is_checked_before_the_signature() {
        // A 16384-bit RSA key (too big for ring's verifier) with a signature that could not
        // verify anyway: the refusal must be the key policy's, naming the key and the profile.
        let mut modulus = vec![0x00];
        modulus.extend(std::iter::repeat_n(0xff, 2048));
        let rsa_key = tlv(0x30, &[tlv(0x02, &modulus), tlv(0x02, &[1, 0, 1])].concat());
        let rsa_encryption = tlv(
            0x30,
            &[
                tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 1]),
                vec![0x05, 0x00],
            ]
            .concat(),
        );
        let spki = tlv(
            0x30,
            &[rsa_encryption, tlv(0x03, &[&[0][..], &rsa_key].concat())].concat(),
        );
        let info = tlv(
            0x30,
            &[tlv(0x02, &[0]), tlv(0x30, &[]), spki, tlv(0xa0, &[])].concat(),
        );
        let sha256_with_rsa = tlv(
            0x30,
            &[
                tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 11]),
                vec![0x05, 0x00],
            ]
            .concat(),
        );
        let der = tlv(0x30, &[info, sha256_with_rsa, tlv(0x03, &[0, 0])].concat());

        match super::super::parse_csr_for(&der, &Profile::default_server()) {
            Err(CaError::KeyPolicy(m)) => assert_eq!(
                m,
                "RSA key of 16384 bits; accepted: 2048..=8192 bits (profile \"default\")"
            ),
            other => panic!("{other:?}"),
        }
        // Without a profile only the signature is checked, and it does not verify.
        assert_bad(parse_csr(&der));
    }

    #[test]
    fn rsa_pss_signed_csr_verifies() {
        let der = super::super::testutil::rsa_pss_csr_der();
        let csr = parse_csr(&der).unwrap();
        assert_eq!(csr.dns_names, vec!["pss.example"]);
    }

    #[test]
    fn ip_sans_and_ip_common_name() {
        let der = csr_with(
            KeyType::P256,
            Some("192.0.2.7"),
            &[],
            &["192.0.2.7", "2001:db8::1"],
            false,
        );
        let csr = parse_csr(&der).unwrap();
        assert!(csr.dns_names.is_empty());
        assert_eq!(
            csr.ip_addrs,
            vec![
                "192.0.2.7".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn common_name_that_is_not_a_host_is_ignored() {
        let der = csr_der(KeyType::P256, Some("My Laptop"), &["a.example"]);
        let csr = parse_csr(&der).unwrap();
        assert_eq!(csr.dns_names, vec!["a.example"]);
        assert_eq!(csr.common_name.as_deref(), Some("My Laptop"));
    }

    #[test]
    fn tampered_signature_is_refused() {
        let mut der = csr_der(KeyType::P256, None, &["a.example"]);
        let n = der.len();
        der[n - 3] ^= 0x01;
        assert_bad(parse_csr(&der));
        let mut der = csr_der(KeyType::Rsa(2048), None, &["a.example"]);
        let n = der.len();
        der[n - 1] ^= 0x01;
        assert_bad(parse_csr(&der));
    }

    #[test]
    fn tampered_request_info_is_refused() {
        let mut der = csr_der(KeyType::Ed25519, None, &["a.example"]);
        let pos = der.windows(9).position(|w| w == b"a.example").unwrap();
        der[pos] = b'b';
        assert_bad(parse_csr(&der));
    }

    #[test]
    fn ca_true_request_is_refused() {
        let der = csr_with(KeyType::P256, None, &["a.example"], &[], true);
        match parse_csr(&der) {
            Err(CaError::BadCsr(m)) => assert!(m.contains("CA"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_bad_csr_and_never_panics() {
        assert_bad(parse_csr(b""));
        assert_bad(parse_csr(b"hello"));
        assert_bad(parse_csr(&[0x30, 0x80, 0x00, 0x00]));
        assert_bad(parse_csr(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]));
        // Every truncation and a sweep of single-byte corruptions of a real CSR.
        let der = csr_der(KeyType::P256, Some("x.example"), &["x.example"]);
        for len in 0..der.len() {
            assert_bad(parse_csr(&der[..len]));
        }
        for i in 0..der.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut d = der.clone();
                d[i] ^= flip;
                // Most flips break the signature; none may panic.
                let _ = parse_csr(&d);
            }
        }
    }

    #[test]
    fn host_name_heuristic() {
        assert!(looks_like_dns_name("a.example"));
        assert!(looks_like_dns_name("*.example.com"));
        assert!(looks_like_dns_name("localhost"));
        assert!(!looks_like_dns_name("My Laptop"));
        assert!(!looks_like_dns_name("a..b"));
        assert!(!looks_like_dns_name(""));
    }

    mod hostile {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary bytes, and a real CSR with one byte changed or cut short: parsed or
            /// refused with a reason, never a panic; a CSR cut short is always refused.
            #[test]
            fn any_csr_bytes_parse_or_are_refused(
                noise in proptest::collection::vec(any::<u8>(), 0..256),
                at in any::<prop::sample::Index>(),
                flip in 1u8..=255,
                cut in any::<bool>(),
            ) {
                if let Err(e) = parse(&noise, None, Possession::Verify) {
                    prop_assert!(!e.to_string().is_empty());
                }
                let mut der = super::super::super::testutil::csr_der(
                    super::super::super::testutil::KeyType::P256,
                    None,
                    &["a.example"],
                );
                let i = at.index(der.len());
                if cut {
                    der.truncate(i);
                } else {
                    der[i] ^= flip;
                }
                match parse(&der, None, Possession::Verify) {
                    Ok(_) => prop_assert!(!cut, "a CSR cut at byte {i} parsed"),
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
        }
    }
}
