//! DER decoders (bcder) for what the CA reads: SubjectPublicKeyInfos, certificates and the
//! extensions it acts on. Byte spans that must be reproduced exactly (SPKI, issuer name, TBS) are
//! kept verbatim: re-encoding them through x509-certificate's types is not byte-faithful (an
//! Ed25519 SPKI would gain a NULL parameter, RFC 8410 §3).
//!
//! Errors are plain strings; callers turn them into `BadCsr` or `BadCertificate`.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bcder::decode::{Constructed, DecodeError, SliceSource, Source};
use bcder::{BitString, Mode, Oid, Tag};
use bytes::Bytes;
use x509_certificate::asn1time::Time;
use x509_certificate::rfc5280::Extensions;

use super::oids;

/// Decodes a whole DER value with `op`, mapping bcder's error to text.
pub fn decode<'d, T, F>(der: &'d [u8], op: F) -> Result<T, String>
where
    F: FnOnce(&mut Constructed<'_, SliceSource<'d>>) -> Result<T, DecodeError<Infallible>>,
{
    Constructed::decode(der, Mode::Der, op).map_err(|e| e.to_string())
}

/// The subject's common name and organizational units (the admin API's role markers).
pub fn subject_fields(name_der: &[u8]) -> Result<(Option<String>, Vec<String>), String> {
    // Name::take_from needs an owning source; the subject is small.
    let name = Constructed::decode(
        bytes::Bytes::copy_from_slice(name_der),
        Mode::Der,
        x509_certificate::rfc3280::Name::take_from,
    )
    .map_err(|e| e.to_string())?;
    let text = |a: &x509_certificate::rfc3280::AttributeTypeAndValue| {
        a.to_string().map_err(|e| e.to_string())
    };
    let cn = name.iter_common_name().next().map(text).transpose()?;
    let units = name
        .iter_organizational_unit()
        .map(text)
        .collect::<Result<_, _>>()?;
    Ok((cn, units))
}

/// A BIT STRING's octets, refusing a partial last octet (keys and signatures are whole octets).
fn octets<S: Source>(
    cons: &mut Constructed<S>,
    bits: BitString,
) -> Result<Bytes, DecodeError<S::Error>> {
    if bits.unused() != 0 {
        return Err(cons.content_err("bit string with unused bits"));
    }
    Ok(bits.octet_bytes())
}

/// A SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), with its exact DER.
#[derive(Clone, Debug)]
pub struct Spki {
    pub der: Vec<u8>,
    pub algorithm: Oid<Bytes>,
    /// DER of the parameters, empty when absent.
    pub parameters: Vec<u8>,
    /// The subjectPublicKey BIT STRING octets (what ring's verifiers take).
    pub key: Bytes,
}

/// An AlgorithmIdentifier's OID and the raw DER of its parameters (empty when absent).
pub type Algorithm = (Oid<Bytes>, Vec<u8>);

/// Takes an AlgorithmIdentifier (RFC 5280 §4.1.1.2).
pub fn take_algorithm<S: Source>(
    cons: &mut Constructed<S>,
) -> Result<Algorithm, DecodeError<S::Error>> {
    cons.take_sequence(|cons| {
        let oid = Oid::take_from(cons)?;
        let params = cons.capture_all()?;
        Ok((oid, params.as_slice().to_vec()))
    })
}

/// Parses a DER SubjectPublicKeyInfo.
pub fn parse_spki(der: &[u8]) -> Result<Spki, String> {
    let (algorithm, parameters, key) = decode(der, |cons| {
        cons.take_sequence(|cons| {
            let (oid, params) = take_algorithm(cons)?;
            let bits = BitString::take_from(cons)?;
            let key = octets(cons, bits)?;
            Ok((oid, params, key))
        })
    })
    .map_err(|e| format!("malformed public key: {e}"))?;
    Ok(Spki {
        der: der.to_vec(),
        algorithm,
        parameters,
        key,
    })
}

/// The kind of a subject key, as far as key policy cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `pss_only`: the SPKI uses id-RSASSA-PSS (RFC 4055 §1.2) rather than rsaEncryption.
    Rsa {
        modulus_bits: u32,
        pss_only: bool,
    },
    /// Curve name as in the key policy ("P-256", "P-384", "P-521") or the dotted OID.
    Ec(String),
    Ed25519,
}

impl Spki {
    /// Classifies the key. Unknown algorithms are an error.
    pub fn kind(&self) -> Result<KeyKind, String> {
        let alg = &self.algorithm;
        if *alg == oids::RSA_ENCRYPTION || *alg == oids::RSASSA_PSS {
            Ok(KeyKind::Rsa {
                modulus_bits: rsa_modulus_bits(&self.key)?,
                pss_only: *alg == oids::RSASSA_PSS,
            })
        } else if *alg == oids::EC_PUBLIC_KEY {
            let curve = decode(&self.parameters, Oid::take_from)
                .map_err(|e| format!("EC key without a named curve: {e}"))?;
            let name = if curve == oids::SECP256R1 {
                "P-256".to_string()
            } else if curve == oids::SECP384R1 {
                "P-384".to_string()
            } else if curve == oids::SECP521R1 {
                "P-521".to_string()
            } else {
                curve.to_string()
            };
            Ok(KeyKind::Ec(name))
        } else if *alg == oids::ED25519 {
            // RFC 8410 §3: parameters MUST be absent.
            if !self.parameters.is_empty() || self.key.len() != 32 {
                return Err("malformed Ed25519 key".into());
            }
            Ok(KeyKind::Ed25519)
        } else {
            Err(format!("unsupported key algorithm {alg}"))
        }
    }
}

/// Bit length of the modulus of a DER RSAPublicKey (RFC 8017 §A.1.1).
fn rsa_modulus_bits(key: &[u8]) -> Result<u32, String> {
    let modulus = decode(key, |cons| {
        cons.take_sequence(|cons| {
            let n = cons.take_primitive_if(Tag::INTEGER, |p| p.take_all())?;
            cons.take_primitive_if(Tag::INTEGER, |p| p.skip_all())?;
            Ok(n)
        })
    })
    .map_err(|e| format!("malformed RSA key: {e}"))?;
    let significant: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return Err("RSA modulus is zero".into()),
    };
    // significant[0] is non-zero by construction of `position`.
    let lead = 8 - significant[0].leading_zeros();
    u32::try_from(significant.len() - 1)
        .ok()
        .and_then(|n| n.checked_mul(8))
        .and_then(|n| n.checked_add(lead))
        .ok_or_else(|| "RSA modulus too large".to_string())
}

/// One extension, decoded to the parts the CA needs.
#[derive(Clone, Debug)]
pub struct Ext {
    pub id: Oid<Bytes>,
    pub value: Bytes,
}

/// Converts x509-certificate's extension list.
pub fn from_extensions(exts: &Extensions) -> Vec<Ext> {
    exts.iter()
        .map(|e| Ext {
            id: e.id.clone(),
            value: e.value.clone().into_bytes(),
        })
        .collect()
}

/// The fields of a certificate the CA reads, with verbatim byte spans.
#[derive(Clone, Debug)]
pub struct Cert {
    /// DER of the TBSCertificate, the signed bytes.
    pub tbs: Vec<u8>,
    pub signature_algorithm: Vec<u8>,
    pub signature: Bytes,
    /// Content octets of the serialNumber INTEGER.
    pub serial: Bytes,
    pub issuer: Vec<u8>,
    pub subject: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub spki: Vec<u8>,
    pub extensions: Vec<Ext>,
}

impl Cert {
    /// The extension with `id`, if present.
    pub fn extension(&self, id: &bcder::ConstOid) -> Option<&Ext> {
        self.extensions.iter().find(|e| e.id == *id)
    }
}

/// Parses a DER X.509 certificate (RFC 5280 §4.1).
pub fn parse_certificate(der: &[u8]) -> Result<Cert, String> {
    struct TbsParts {
        serial: Bytes,
        issuer: Vec<u8>,
        subject: Vec<u8>,
        validity: (Time, Time),
        spki: Vec<u8>,
        extensions: Vec<Ext>,
    }
    let (tbs, parts, signature_algorithm, signature) = decode(der, |cons| {
        cons.take_sequence(|cons| {
            let tbs = cons.capture_one()?;
            let signature_algorithm = cons.capture_one()?;
            let bits = BitString::take_from(cons)?;
            let signature = octets(cons, bits)?;
            Ok((tbs, signature_algorithm, signature))
        })
    })
    .and_then(|(tbs, alg, sig)| {
        let parts = decode(tbs.as_slice(), |cons| {
            cons.take_sequence(|cons| {
                cons.take_opt_constructed_if(Tag::CTX_0, |c| c.skip_all())?;
                let serial = cons.take_primitive_if(Tag::INTEGER, |p| p.take_all())?;
                cons.capture_one()?; // signature AlgorithmIdentifier (repeated outside)
                let issuer = cons.capture_one()?;
                let validity =
                    cons.take_sequence(|c| Ok((Time::take_from(c)?, Time::take_from(c)?)))?;
                let subject = cons.capture_one()?;
                let spki = cons.capture_one()?;
                cons.take_opt_primitive_if(Tag::CTX_1, |p| p.skip_all())?;
                cons.take_opt_primitive_if(Tag::CTX_2, |p| p.skip_all())?;
                let extensions = cons
                    .take_opt_constructed_if(Tag::CTX_3, Extensions::take_from)?
                    .map(|e| from_extensions(&e))
                    .unwrap_or_default();
                Ok(TbsParts {
                    serial,
                    issuer: issuer.as_slice().to_vec(),
                    subject: subject.as_slice().to_vec(),
                    validity,
                    spki: spki.as_slice().to_vec(),
                    extensions,
                })
            })
        })?;
        Ok((tbs.as_slice().to_vec(), parts, alg.as_slice().to_vec(), sig))
    })
    .map_err(|e| format!("malformed certificate: {e}"))?;
    let (not_before, not_after) = parts.validity;
    Ok(Cert {
        tbs,
        signature_algorithm,
        signature,
        serial: parts.serial,
        issuer: parts.issuer,
        subject: parts.subject,
        not_before: chrono::DateTime::<chrono::Utc>::from(not_before).timestamp(),
        not_after: chrono::DateTime::<chrono::Utc>::from(not_after).timestamp(),
        spki: parts.spki,
        extensions: parts.extensions,
    })
}

/// What a CRL says of itself (RFC 5280 §5.1.2): its validity and how many entries it lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSummary {
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds; optional in the syntax, always written by the built-in CA.
    pub next_update: Option<i64>,
    pub revoked: usize,
}

/// Reads thisUpdate, nextUpdate and the number of revoked entries of a DER CertificateList.
pub fn parse_crl(der: &[u8]) -> Result<CrlSummary, String> {
    let unix = |t: Time| chrono::DateTime::<chrono::Utc>::from(t).timestamp();
    let (this_update, next_update, revoked) = decode(der, |cons| {
        cons.take_sequence(|cons| {
            let tbs = cons.take_sequence(|cons| {
                cons.take_opt_primitive_if(Tag::INTEGER, |p| p.skip_all())?; // version v2
                cons.capture_one()?; // signature AlgorithmIdentifier
                cons.capture_one()?; // issuer
                let this_update = Time::take_from(cons)?;
                let next_update = Time::take_opt_from(cons)?;
                let revoked = cons
                    .take_opt_sequence(|cons| {
                        let mut n = 0usize;
                        while cons.take_opt_sequence(|c| c.skip_all())?.is_some() {
                            n += 1;
                        }
                        Ok(n)
                    })?
                    .unwrap_or(0);
                cons.take_opt_constructed_if(Tag::CTX_0, |c| c.skip_all())?;
                Ok((this_update, next_update, revoked))
            })?;
            cons.capture_one()?; // signatureAlgorithm
            cons.capture_one()?; // signatureValue
            Ok(tbs)
        })
    })
    .map_err(|e| format!("malformed CRL: {e}"))?;
    Ok(CrlSummary {
        this_update: unix(this_update),
        next_update: next_update.map(unix),
        revoked,
    })
}

/// Names from a GeneralNames value (RFC 5280 §4.2.1.6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AltNames {
    /// dNSName entries, lower-cased.
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// Count of entries of any other type (rfc822Name, URI, otherName, ...).
    pub other: usize,
}

/// Parses the extnValue of a subjectAltName extension.
pub fn parse_alt_names(value: &[u8]) -> Result<AltNames, String> {
    decode(value, |cons| {
        cons.take_sequence(|cons| {
            let mut names = AltNames::default();
            while let Some(()) = cons.take_opt_value(|tag, content| {
                if tag == Tag::CTX_2 {
                    let raw = content.as_primitive()?.take_all()?;
                    if raw.is_empty() || !raw.is_ascii() {
                        return Err(content.content_err("dNSName is not a non-empty IA5String"));
                    }
                    names
                        .dns
                        .push(String::from_utf8_lossy(&raw).to_ascii_lowercase());
                } else if tag == Tag::ctx(7) {
                    let raw = content.as_primitive()?.take_all()?;
                    let ip = match raw.len() {
                        4 => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
                        16 => {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(&raw);
                            IpAddr::V6(Ipv6Addr::from(o))
                        }
                        _ => return Err(content.content_err("iPAddress of bad length")),
                    };
                    names.ips.push(ip);
                } else {
                    match content {
                        bcder::decode::Content::Primitive(p) => p.skip_all()?,
                        bcder::decode::Content::Constructed(c) => c.skip_all()?,
                    }
                    names.other += 1;
                }
                Ok(())
            })? {}
            Ok(names)
        })
    })
    .map_err(|e| format!("malformed subjectAltName: {e}"))
}

/// Whether a BasicConstraints extnValue (RFC 5280 §4.2.1.9) asserts cA.
pub fn basic_constraints_ca(value: &[u8]) -> Result<bool, String> {
    decode(value, |cons| {
        cons.take_sequence(|cons| {
            let ca = cons.take_opt_bool()?.unwrap_or(false);
            cons.take_opt_primitive_if(Tag::INTEGER, |p| p.skip_all())?;
            Ok(ca)
        })
    })
    .map_err(|e| format!("malformed basicConstraints: {e}"))
}

/// The keyIdentifier of a SubjectKeyIdentifier extnValue (an OCTET STRING).
pub fn subject_key_identifier(value: &[u8]) -> Result<Vec<u8>, String> {
    decode(value, |cons| {
        cons.take_primitive_if(Tag::OCTET_STRING, |p| p.take_all())
    })
    .map(|b| b.to_vec())
    .map_err(|e| format!("malformed subjectKeyIdentifier: {e}"))
}

/// The keyIdentifier of an AuthorityKeyIdentifier extnValue (RFC 5280 §4.2.1.1:
/// `SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, authorityCertIssuer [1],
/// authorityCertSerialNumber [2] }`), if it has one.
pub fn authority_key_identifier(value: &[u8]) -> Result<Option<Vec<u8>>, String> {
    decode(value, |cons| {
        cons.take_sequence(|cons| {
            let id = cons.take_opt_primitive_if(Tag::CTX_0, |p| p.take_all())?;
            cons.take_opt_constructed_if(Tag::CTX_1, |c| c.skip_all())?;
            cons.take_opt_primitive_if(Tag::CTX_2, |p| p.skip_all())?;
            Ok(id.map(|b| b.to_vec()))
        })
    })
    .map_err(|e| format!("malformed authorityKeyIdentifier: {e}"))
}

/// Serial number as lower-case hex without leading zeros ("0" for zero).
pub fn serial_hex(content: &[u8]) -> String {
    let hex = crate::hex::lower(content);
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::super::der;
    use super::*;

    #[test]
    fn alt_names_round_trip_with_der_encoder() {
        let dns = vec!["Example.COM".to_string(), "b.example".into()];
        let ips: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let parsed = parse_alt_names(&der::subject_alt_name(&dns, &ips)).unwrap();
        assert_eq!(parsed.dns, vec!["example.com", "b.example"]);
        assert_eq!(parsed.ips, ips);
        assert_eq!(parsed.other, 0);
    }

    #[test]
    fn alt_names_count_other_types_and_refuse_bad_ips() {
        // SEQ { [1] "a@b", [6] "http://x" }
        let der = [
            0x30, 0x0d, 0x81, 0x03, b'a', b'@', b'b', 0x86, 0x06, b'h', b't', b't', b'p', b':',
            b'x',
        ];
        assert_eq!(parse_alt_names(&der).unwrap().other, 2);
        // SEQ { [7] 3 octets }
        assert!(parse_alt_names(&[0x30, 0x05, 0x87, 0x03, 1, 2, 3]).is_err());
        assert!(parse_alt_names(&[0x30]).is_err());
    }

    #[test]
    fn basic_constraints_round_trip() {
        assert!(basic_constraints_ca(&der::basic_constraints(true, Some(0))).unwrap());
        assert!(!basic_constraints_ca(&der::basic_constraints(false, None)).unwrap());
        assert!(basic_constraints_ca(&[0x30, 0x03, 0x01, 0x01]).is_err());
    }

    #[test]
    fn authority_key_identifiers_read_the_key_id() {
        assert_eq!(
            authority_key_identifier(&der::authority_key_identifier(&[1, 2])).unwrap(),
            Some(vec![1, 2])
        );
        // SEQ {} : no keyIdentifier.
        assert_eq!(authority_key_identifier(&[0x30, 0x00]).unwrap(), None);
        assert!(authority_key_identifier(&[0x04, 0x00]).is_err());
    }

    #[test]
    fn serial_hex_trims_leading_zeros() {
        assert_eq!(serial_hex(&[0x00, 0x0a, 0xbc]), "abc");
        assert_eq!(serial_hex(&[0x00]), "0");
        assert_eq!(serial_hex(&[0x7f, 0x01]), "7f01");
    }

    #[test]
    fn p256_spki_classifies() {
        let spki = parse_spki(&der::p256_spki(&[4u8; 65])).unwrap();
        assert_eq!(spki.kind().unwrap(), KeyKind::Ec("P-256".into()));
        assert_eq!(spki.key.len(), 65);
        assert!(parse_spki(b"\x30\x00").is_err());
    }
}
