//! PKCS#10 requests (RFC 2986): parsing, self-signature verification, requested names, and the
//! facts about a subject public key that key policies look at.

use std::net::IpAddr;

use ring::signature::{self as sig, UnparsedPublicKey};

use super::der::{self, children, expect, oid_string, Tlv};
use super::{CaError, Csr};

pub const OID_RSA: &str = "1.2.840.113549.1.1.1";
pub const OID_EC: &str = "1.2.840.10045.2.1";
pub const OID_P256: &str = "1.2.840.10045.3.1.7";
pub const OID_P384: &str = "1.3.132.0.34";
pub const OID_ED25519: &str = "1.3.101.112";
const OID_CN: &str = "2.5.4.3";
const OID_EXTENSION_REQUEST: &str = "1.2.840.113549.1.9.14";
pub const OID_SAN: &str = "2.5.29.17";
pub const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";

/// What a subject public key is, for key policies (RFC 5480, RFC 8410).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: usize },
    Ec { curve: String },
    Ed25519,
}

/// Parses a SubjectPublicKeyInfo into its kind and the raw key bits.
pub fn parse_spki(spki: &[u8]) -> Result<(KeyKind, Vec<u8>), CaError> {
    let bad = |why: &str| CaError::BadCsr(format!("subject public key: {why}"));
    let (outer, _) = expect(spki, der::SEQUENCE).ok_or_else(|| bad("not a SEQUENCE"))?;
    let parts = children(outer.content).ok_or_else(|| bad("malformed"))?;
    let [alg, key] = parts.as_slice() else {
        return Err(bad("expected algorithm and key"));
    };
    let alg_parts = children(alg.content).ok_or_else(|| bad("malformed algorithm"))?;
    let alg_oid = alg_parts
        .first()
        .filter(|t| t.tag == der::OID)
        .map(|t| oid_string(t.content));
    if key.tag != der::BIT_STRING || key.content.first() != Some(&0) {
        return Err(bad("key is not a whole-byte BIT STRING"));
    }
    let bits = key.content[1..].to_vec();
    let kind = match alg_oid.as_deref() {
        Some(OID_RSA) => {
            let (rsa, _) = expect(&bits, der::SEQUENCE).ok_or_else(|| bad("RSA key malformed"))?;
            let n = children(rsa.content)
                .and_then(|c| c.first().copied())
                .filter(|t| t.tag == der::INTEGER)
                .ok_or_else(|| bad("RSA modulus missing"))?;
            let magnitude: Vec<u8> = n.content.iter().copied().skip_while(|b| *b == 0).collect();
            let lead = magnitude
                .first()
                .map_or(0, |b| 8 - b.leading_zeros() as usize);
            KeyKind::Rsa {
                bits: magnitude.len().saturating_sub(1) * 8 + lead,
            }
        }
        Some(OID_EC) => {
            let curve = alg_parts
                .get(1)
                .filter(|t| t.tag == der::OID)
                .map(|t| oid_string(t.content));
            let name = match curve.as_deref() {
                Some(OID_P256) => "P-256".to_string(),
                Some(OID_P384) => "P-384".to_string(),
                Some(other) => other.to_string(),
                None => return Err(bad("EC key without named curve")),
            };
            KeyKind::Ec { curve: name }
        }
        Some(OID_ED25519) => KeyKind::Ed25519,
        Some(other) => return Err(bad(&format!("unsupported key algorithm {other}"))),
        None => return Err(bad("missing algorithm")),
    };
    Ok((kind, bits))
}

/// The ring algorithm that verifies `sig_oid` signatures by a key of `kind`.
fn verification_alg(
    sig_oid: &str,
    kind: &KeyKind,
) -> Option<&'static dyn sig::VerificationAlgorithm> {
    Some(match (sig_oid, kind) {
        ("1.2.840.113549.1.1.11", KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.10045.4.3.2", KeyKind::Ec { curve }) if curve == "P-256" => {
            &sig::ECDSA_P256_SHA256_ASN1
        }
        ("1.2.840.10045.4.3.3", KeyKind::Ec { curve }) if curve == "P-256" => {
            &sig::ECDSA_P256_SHA384_ASN1
        }
        ("1.2.840.10045.4.3.2", KeyKind::Ec { curve }) if curve == "P-384" => {
            &sig::ECDSA_P384_SHA256_ASN1
        }
        ("1.2.840.10045.4.3.3", KeyKind::Ec { curve }) if curve == "P-384" => {
            &sig::ECDSA_P384_SHA384_ASN1
        }
        (OID_ED25519, KeyKind::Ed25519) => &sig::ED25519,
        _ => return None,
    })
}

/// Parses a DER CSR, verifies its self-signature, refuses a CA:true request, and returns its
/// names and key.
pub fn parse(der_bytes: &[u8]) -> Result<Csr, CaError> {
    let bad = |why: &str| CaError::BadCsr(why.to_string());
    let (outer, rest) =
        expect(der_bytes, der::SEQUENCE).ok_or_else(|| bad("not a DER SEQUENCE"))?;
    if !rest.is_empty() {
        return Err(bad("trailing data after the CSR"));
    }
    let parts = children(outer.content).ok_or_else(|| bad("malformed CSR"))?;
    let [info, alg, signature] = parts.as_slice() else {
        return Err(bad("CSR must have info, algorithm, signature"));
    };
    let info_parts =
        children(info.content).ok_or_else(|| bad("malformed CertificationRequestInfo"))?;
    if info_parts.len() < 3 {
        return Err(bad("CertificationRequestInfo is incomplete"));
    }
    let (subject, spki) = (info_parts[1], info_parts[2]);
    let (kind, key_bits) = parse_spki(spki.raw)?;
    let sig_oid = children(alg.content)
        .and_then(|c| c.first().copied())
        .filter(|t| t.tag == der::OID)
        .map(|t| oid_string(t.content))
        .ok_or_else(|| bad("signature algorithm missing"))?;
    if signature.tag != der::BIT_STRING || signature.content.first() != Some(&0) {
        return Err(bad("signature is not a BIT STRING"));
    }
    if let KeyKind::Rsa { bits } = kind {
        if !(2048..=8192).contains(&bits) {
            return Err(CaError::KeyPolicy(format!(
                "RSA keys must have 2048 to 8192 bits, this one has {bits}"
            )));
        }
    }
    let alg = verification_alg(&sig_oid, &kind).ok_or_else(|| {
        bad(&format!(
            "signature algorithm {sig_oid} does not fit a {kind:?} key"
        ))
    })?;
    UnparsedPublicKey::new(alg, &key_bits)
        .verify(info.raw, &signature.content[1..])
        .map_err(|_| bad("the CSR signature does not verify with its own key"))?;

    let common_name = common_name(subject.content);
    let mut dns_names = Vec::new();
    let mut ip_addrs = Vec::new();
    // Attributes: [0] IMPLICIT SET OF Attribute.
    if let Some(attrs) = info_parts.get(3).filter(|t| t.tag == der::context(0, true)) {
        for attr in children(attrs.content).ok_or_else(|| bad("malformed attributes"))? {
            let a = children(attr.content).ok_or_else(|| bad("malformed attribute"))?;
            if a.first().map(|t| oid_string(t.content)).as_deref() != Some(OID_EXTENSION_REQUEST) {
                continue;
            }
            let values = a
                .get(1)
                .and_then(|s| children(s.content))
                .ok_or_else(|| bad("malformed extensionRequest"))?;
            for exts in values {
                for ext in children(exts.content).ok_or_else(|| bad("malformed extensions"))? {
                    apply_extension(ext, &mut dns_names, &mut ip_addrs)?;
                }
            }
        }
    }
    if let Some(cn) = &common_name {
        match cn.parse::<IpAddr>() {
            Ok(ip) => ip_addrs.push(ip),
            Err(_) => dns_names.push(cn.to_ascii_lowercase()),
        }
    }
    dns_names.sort();
    dns_names.dedup();
    ip_addrs.sort();
    ip_addrs.dedup();
    Ok(Csr {
        common_name,
        dns_names,
        ip_addrs,
        spki_der: spki.raw.to_vec(),
        der: der_bytes.to_vec(),
    })
}

fn apply_extension(
    ext: Tlv<'_>,
    dns: &mut Vec<String>,
    ips: &mut Vec<IpAddr>,
) -> Result<(), CaError> {
    let bad = |why: &str| CaError::BadCsr(why.to_string());
    let parts = children(ext.content).ok_or_else(|| bad("malformed extension"))?;
    let id = parts
        .first()
        .map(|t| oid_string(t.content))
        .unwrap_or_default();
    let value = parts
        .last()
        .filter(|t| t.tag == der::OCTET_STRING)
        .ok_or_else(|| bad("extension without value"))?;
    match id.as_str() {
        OID_SAN => {
            let (names, _) = expect(value.content, der::SEQUENCE)
                .ok_or_else(|| bad("malformed subjectAltName"))?;
            let (d, i) =
                general_names(names.content).ok_or_else(|| bad("malformed subjectAltName"))?;
            dns.extend(d.into_iter().map(|n| n.to_ascii_lowercase()));
            ips.extend(i);
        }
        OID_BASIC_CONSTRAINTS => {
            let (bc, _) = expect(value.content, der::SEQUENCE)
                .ok_or_else(|| bad("malformed basicConstraints"))?;
            let is_ca = children(bc.content)
                .and_then(|c| c.first().copied())
                .is_some_and(|t| {
                    t.tag == der::BOOLEAN && t.content.first().is_some_and(|b| *b != 0)
                });
            if is_ca {
                return Err(bad(
                    "the CSR asks for a CA certificate (basicConstraints cA=TRUE)",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// dNSName ([2]) and iPAddress ([7]) entries of a GeneralNames content.
pub fn general_names(content: &[u8]) -> Option<(Vec<String>, Vec<IpAddr>)> {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in children(content)? {
        match name.tag {
            0x82 => dns.push(String::from_utf8(name.content.to_vec()).ok()?),
            0x87 => ips.push(match name.content.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(name.content).ok()?),
                16 => IpAddr::from(<[u8; 16]>::try_from(name.content).ok()?),
                _ => return None,
            }),
            _ => {}
        }
    }
    Some((dns, ips))
}

/// The first commonName of a Name's content.
fn common_name(name: &[u8]) -> Option<String> {
    for rdn in children(name)? {
        for atv in children(rdn.content)? {
            let parts = children(atv.content)?;
            if parts.first().map(|t| oid_string(t.content)).as_deref() == Some(OID_CN) {
                return parts
                    .get(1)
                    .and_then(|v| String::from_utf8(v.content.to_vec()).ok());
            }
        }
    }
    None
}
