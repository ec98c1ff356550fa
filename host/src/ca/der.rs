//! DER encoders (bcder) for the certificate parts the CA writes itself.
//!
//! Why not x509-certificate's `X509CertificateBuilder`: it takes an `i64` serial (RFC 5280
//! §4.1.2.2 and CA/B BR §7.1 want >= 64 random bits; we use 16 bytes), writes a NULL parameter
//! into every signature AlgorithmIdentifier (RFC 5758 §3.2: ecdsa-with-SHA256 MUST omit it, and
//! webpki compares those bytes exactly) and re-encodes the subject key, which would add that NULL
//! to an Ed25519 SPKI (RFC 8410 §3: parameters MUST be absent). So the TBSCertificate is assembled
//! here from parts, with the requested SPKI copied byte for byte. Names still come from
//! x509-certificate's `Name`.

use std::io;
use std::net::IpAddr;

use base64::Engine as _;
use bcder::encode::{self, PrimitiveContent, Values};
use bcder::{Captured, ConstOid, Mode, Tag};
use x509_certificate::rfc3280::Name;

use super::oids;

/// KeyUsage bit numbers (RFC 5280 §4.2.1.3).
pub const KU_DIGITAL_SIGNATURE: u8 = 0;
pub const KU_KEY_ENCIPHERMENT: u8 = 2;
pub const KU_KEY_CERT_SIGN: u8 = 5;
pub const KU_CRL_SIGN: u8 = 6;

/// Already-encoded DER, inserted verbatim.
#[derive(Debug)]
pub struct Raw<'a>(pub &'a [u8]);

impl Values for Raw<'_> {
    fn encoded_len(&self, _: Mode) -> usize {
        self.0.len()
    }

    fn write_encoded<W: io::Write>(&self, _: Mode, target: &mut W) -> io::Result<()> {
        target.write_all(self.0)
    }
}

/// Encodes `values` as DER bytes.
pub fn to_der<V: Values>(values: V) -> Vec<u8> {
    Captured::from_values(Mode::Der, values)
        .into_bytes()
        .to_vec()
}

/// One `Extension` (RFC 5280 §4.1): `critical` is written only when true (DER omits DEFAULTs).
pub fn extension(id: ConstOid, critical: bool, value: &[u8]) -> Vec<u8> {
    to_der(encode::sequence((
        id.encode(),
        critical.then(|| true.encode()),
        value.encode(),
    )))
}

/// BasicConstraints (RFC 5280 §4.2.1.9). `cA` FALSE is the DEFAULT and therefore omitted.
pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Vec<u8> {
    to_der(encode::sequence((
        ca.then(|| true.encode()),
        path_len.map(|n| n.encode()),
    )))
}

/// KeyUsage (RFC 5280 §4.2.1.3) for bits 0..=7, as a DER named-bit BIT STRING: trailing zero bits
/// are dropped and counted in the "unused bits" octet (X.690 §11.2.2).
pub fn key_usage(bits: &[u8]) -> Vec<u8> {
    let byte = bits
        .iter()
        .filter(|b| **b < 8)
        .fold(0u8, |acc, b| acc | (0x80 >> b));
    if byte == 0 {
        return to_der(bcder::BitString::encode_slice(&[][..], 0));
    }
    // trailing_zeros of a non-zero u8 is at most 7, so the cast is lossless.
    let unused = byte.trailing_zeros() as u8;
    to_der(bcder::BitString::encode_slice(&[byte][..], unused))
}

/// ExtKeyUsageSyntax (RFC 5280 §4.2.1.12).
pub fn ext_key_usage(purposes: &[ConstOid]) -> Vec<u8> {
    let oids: Vec<_> = purposes.iter().map(|o| o.encode()).collect();
    to_der(encode::sequence(oids))
}

/// SubjectKeyIdentifier (RFC 5280 §4.2.1.2): an OCTET STRING.
pub fn subject_key_identifier(id: &[u8]) -> Vec<u8> {
    to_der(id.encode())
}

/// AuthorityKeyIdentifier (RFC 5280 §4.2.1.1) with only `keyIdentifier [0] IMPLICIT`.
pub fn authority_key_identifier(id: &[u8]) -> Vec<u8> {
    to_der(encode::sequence(id.encode_as(Tag::CTX_0)))
}

/// SubjectAltName (RFC 5280 §4.2.1.6): dNSName `[2] IA5String`, iPAddress `[7] OCTET STRING`
/// holding 4 or 16 network-order octets.
pub fn subject_alt_name(dns_names: &[String], ip_addrs: &[IpAddr]) -> Vec<u8> {
    let ip_octets: Vec<Vec<u8>> = ip_addrs
        .iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        })
        .collect();
    let mut names: Vec<_> = dns_names
        .iter()
        .map(|n| n.as_bytes().encode_as(Tag::CTX_2))
        .collect();
    names.extend(
        ip_octets
            .iter()
            .map(|o| o.as_slice().encode_as(Tag::ctx(7))),
    );
    to_der(encode::sequence(names))
}

/// CRLDistributionPoints (RFC 5280 §4.2.1.13) with one point whose fullName is one URI:
/// `SEQ { SEQ { [0] { [0] { [6] uri } } } }` (the outer [0] is a CHOICE, hence constructed).
pub fn crl_distribution_points(url: &str) -> Vec<u8> {
    to_der(encode::sequence(encode::sequence(
        encode::Constructed::new(
            Tag::CTX_0,
            encode::Constructed::new(Tag::CTX_0, url.as_bytes().encode_as(Tag::CTX_6)),
        ),
    )))
}

/// AuthorityInfoAccessSyntax (RFC 5280 §4.2.2.1) with one caIssuers URI.
pub fn authority_info_access_ca_issuers(url: &str) -> Vec<u8> {
    to_der(encode::sequence(encode::sequence((
        oids::CA_ISSUERS.encode(),
        url.as_bytes().encode_as(Tag::CTX_6),
    ))))
}

/// A DER INTEGER from big-endian magnitude octets, minimal and positive (X.690 §8.3.2).
pub fn positive_integer(magnitude: &[u8]) -> Vec<u8> {
    let first = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.get(first).is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(&magnitude[first..]);
    to_der(content.as_slice().encode_as(Tag::INTEGER))
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always Zulu, no
/// fractions. `None` when the instant is outside years 0000-9999.
pub fn time(unix: i64) -> Option<Vec<u8>> {
    let t = chrono::DateTime::from_timestamp(unix, 0)?;
    let year = chrono::Datelike::year(&t);
    let (tag, text) = if (1950..2050).contains(&year) {
        (Tag::UTC_TIME, t.format("%y%m%d%H%M%SZ").to_string())
    } else if (0..=9999).contains(&year) {
        (Tag::GENERALIZED_TIME, t.format("%Y%m%d%H%M%SZ").to_string())
    } else {
        return None;
    };
    Some(to_der(text.as_bytes().encode_as(tag)))
}

/// A distinguished name: optional O then optional CN, each in its own RDN, as UTF8String.
pub fn name(organization: Option<&str>, common_name: Option<&str>) -> Vec<u8> {
    name_with_unit(organization, None, common_name)
}

/// A Name of O, OU and CN, each when given.
pub fn name_with_unit(
    organization: Option<&str>,
    unit: Option<&str>,
    common_name: Option<&str>,
) -> Vec<u8> {
    let mut name = Name::default();
    // UTF8String accepts every Rust string, so the CharSetError arms cannot happen.
    if let Some(o) = organization.filter(|o| !o.is_empty()) {
        let _ = name.append_organization_utf8_string(o);
    }
    if let Some(ou) = unit.filter(|u| !u.is_empty()) {
        let _ = name.append_organizational_unit_utf8_string(ou);
    }
    if let Some(cn) = common_name {
        let _ = name.append_common_name_utf8_string(cn);
    }
    to_der(name.encode_ref())
}

/// The parts of a TBSCertificate (RFC 5280 §4.1), each already DER.
#[derive(Debug)]
pub struct Tbs<'a> {
    pub serial: &'a [u8],
    pub signature_algorithm: &'a [u8],
    pub issuer: &'a [u8],
    pub not_before: &'a [u8],
    pub not_after: &'a [u8],
    pub subject: &'a [u8],
    pub spki: &'a [u8],
    /// Encoded `Extension`s, in order.
    pub extensions: &'a [Vec<u8>],
}

/// A v3 TBSCertificate.
pub fn tbs_certificate(tbs: &Tbs<'_>) -> Vec<u8> {
    let extensions: Vec<Raw<'_>> = tbs.extensions.iter().map(|e| Raw(e)).collect();
    to_der(encode::sequence((
        // version [0] EXPLICIT v3(2)
        encode::Constructed::new(Tag::CTX_0, 2u8.encode()),
        Raw(tbs.serial),
        Raw(tbs.signature_algorithm),
        Raw(tbs.issuer),
        encode::sequence((Raw(tbs.not_before), Raw(tbs.not_after))),
        Raw(tbs.subject),
        Raw(tbs.spki),
        (!extensions.is_empty())
            .then(|| encode::Constructed::new(Tag::CTX_3, encode::sequence(extensions))),
    )))
}

/// A Certificate: TBS, algorithm, signature BIT STRING.
pub fn certificate(tbs: &[u8], signature_algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    to_der(encode::sequence((
        Raw(tbs),
        Raw(signature_algorithm),
        bcder::BitString::encode_slice(signature, 0),
    )))
}

/// AlgorithmIdentifier for ecdsa-with-SHA256 with parameters absent (RFC 5758 §3.2).
pub fn ecdsa_with_sha256() -> Vec<u8> {
    to_der(encode::sequence(oids::ECDSA_WITH_SHA256.encode()))
}

/// SubjectPublicKeyInfo of a P-256 key from its uncompressed point (RFC 5480 §2).
pub fn p256_spki(point: &[u8]) -> Vec<u8> {
    ec_spki(oids::SECP256R1, point)
}

/// SubjectPublicKeyInfo of a key on the named `curve` from its uncompressed point (RFC 5480 §2).
pub fn ec_spki(curve: ConstOid, point: &[u8]) -> Vec<u8> {
    to_der(encode::sequence((
        encode::sequence((oids::EC_PUBLIC_KEY.encode(), curve.encode())),
        bcder::BitString::encode_slice(point, 0),
    )))
}

/// PEM armour (RFC 7468 §2): base64 in 64-column lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // base64 output is ASCII, so every 64-byte chunk is valid UTF-8.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::hex::lower as hex;

    #[test]
    fn basic_constraints_encodings() {
        assert_eq!(hex(&basic_constraints(false, None)), "3000");
        assert_eq!(hex(&basic_constraints(true, None)), "30030101ff");
        assert_eq!(hex(&basic_constraints(true, Some(0))), "30060101ff020100");
    }

    #[test]
    fn key_usage_named_bits_are_minimal() {
        // digitalSignature: 1 bit used, 7 unused.
        assert_eq!(hex(&key_usage(&[KU_DIGITAL_SIGNATURE])), "03020780");
        // digitalSignature + keyEncipherment: 0xa0, 5 unused.
        assert_eq!(
            hex(&key_usage(&[KU_DIGITAL_SIGNATURE, KU_KEY_ENCIPHERMENT])),
            "030205a0"
        );
        // keyCertSign + cRLSign: 0x06, 1 unused.
        assert_eq!(
            hex(&key_usage(&[KU_KEY_CERT_SIGN, KU_CRL_SIGN])),
            "03020106"
        );
        assert_eq!(hex(&key_usage(&[])), "030100");
    }

    #[test]
    fn extension_omits_false_critical() {
        let v = basic_constraints(false, None);
        assert_eq!(
            hex(&extension(oids::BASIC_CONSTRAINTS, false, &v)),
            "30090603551d1304023000"
        );
        assert_eq!(
            hex(&extension(oids::BASIC_CONSTRAINTS, true, &v)),
            "300c0603551d130101ff04023000"
        );
    }

    #[test]
    fn subject_alt_name_dns_and_ips() {
        let der = subject_alt_name(
            &["a.example".into()],
            &["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        );
        let mut want = String::from("3023");
        want += "8209612e6578616d706c65";
        want += "87047f000001";
        want += "871000000000000000000000000000000001";
        assert_eq!(hex(&der), want);
    }

    #[test]
    fn key_identifiers() {
        assert_eq!(hex(&subject_key_identifier(&[1, 2])), "04020102");
        assert_eq!(hex(&authority_key_identifier(&[1, 2])), "300480020102");
    }

    #[test]
    fn crl_dp_and_aia() {
        let url = "http://x/c";
        let u = hex(url.as_bytes());
        assert_eq!(
            hex(&crl_distribution_points(url)),
            format!("30123010a00ea00c860a{u}")
        );
        assert_eq!(
            hex(&authority_info_access_ca_issuers(url)),
            format!("3018301606082b06010505073002860a{u}")
        );
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(hex(&positive_integer(&[0x00, 0x00, 0x7f])), "02017f");
        assert_eq!(hex(&positive_integer(&[0x80])), "02020080");
        assert_eq!(hex(&positive_integer(&[0x00, 0x80, 0x01])), "0203008001");
        assert_eq!(hex(&positive_integer(&[])), "020100");
        assert_eq!(hex(&positive_integer(&[0, 0])), "020100");
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        // 2024-01-02T03:04:05Z
        assert_eq!(
            time(1_704_164_645).unwrap(),
            b"\x17\x0d240102030405Z".to_vec()
        );
        // 2050-01-01T00:00:00Z
        assert_eq!(
            time(2_524_608_000).unwrap(),
            b"\x18\x0f20500101000000Z".to_vec()
        );
        // 1949-12-31T23:59:59Z is before UTCTime's window.
        assert_eq!(
            time(-631_152_001).unwrap(),
            b"\x18\x0f19491231235959Z".to_vec()
        );
        assert!(time(i64::MAX).is_none());
    }

    #[test]
    fn names_and_algorithms() {
        assert_eq!(hex(&name(None, None)), "3000");
        // SEQ { SET { SEQ { 2.5.4.3, UTF8String "a" } } }
        assert_eq!(hex(&name(None, Some("a"))), "300c310a300806035504030c0161");
        assert_eq!(hex(&ecdsa_with_sha256()), "300a06082a8648ce3d040302");
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let p = pem("CERTIFICATE", &[0u8; 60]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 16);
        assert_eq!(lines[3], "-----END CERTIFICATE-----");
    }
}
