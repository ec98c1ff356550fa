//! Building and signing certificates: serials, key identifiers, the key policy, and the leaf
//! profile (RFC 5280 §4.2 extensions, CA/B Forum BR §7.1.2.7 shape for TLS server leaves).

use std::net::IpAddr;

use bcder::ConstOid;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::EcdsaKeyPair;

use super::decode::{KeyKind, Spki};
use super::der;
use super::profile::{ExtendedKeyUsage, KeyPolicy, Profile};
use super::{oids, CaError};

/// Backdating of notBefore, so that clients with a slow clock accept a fresh certificate.
pub const CLOCK_SKEW_SECS: i64 = 60;
/// Serial length. RFC 5280 §4.1.2.2 allows up to 20 octets; CA/B BR §7.1 asks for >= 64 bits
/// of CSPRNG output. We use 126 random bits.
const SERIAL_LEN: usize = 16;

/// A fresh serial: 16 octets, top bit clear (positive), second bit set so the DER INTEGER is
/// always exactly 16 octets with no leading zero; the other 126 bits come from the CSPRNG.
pub fn random_serial(rng: &SystemRandom) -> Result<[u8; SERIAL_LEN], CaError> {
    let mut serial = [0u8; SERIAL_LEN];
    rng.fill(&mut serial)
        .map_err(|_| CaError::Signing("no randomness for a serial".into()))?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial)
}

/// Key identifier, RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value.
pub fn key_identifier(public_key: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, public_key)
        .as_ref()
        .to_vec()
}

/// Refuses keys outside `policy` (ACME `badPublicKey`, RFC 8555 §6.7).
/// [`check_key_policy`] under `profile`'s policy; a refusal names the profile, so the client
/// learns which policy its key missed.
pub fn check_profile_key(kind: &KeyKind, profile: &Profile) -> Result<(), CaError> {
    check_key_policy(kind, &profile.key_policy).map_err(|e| match e {
        CaError::KeyPolicy(m) => CaError::KeyPolicy(format!("{m} (profile {:?})", profile.name)),
        other => other,
    })
}

pub fn check_key_policy(kind: &KeyKind, policy: &KeyPolicy) -> Result<(), CaError> {
    let refuse = |m: String| Err(CaError::KeyPolicy(m));
    match kind {
        KeyKind::Rsa { pss_only: true, .. } => refuse(
            "RSASSA-PSS-only (id-RSASSA-PSS) keys are not accepted; use rsaEncryption".into(),
        ),
        KeyKind::Rsa { modulus_bits, .. } => {
            if policy.rsa_min_bits == 0 {
                refuse("RSA keys are not accepted".into())
            } else if *modulus_bits < policy.rsa_min_bits || *modulus_bits > policy.rsa_max_bits {
                refuse(format!(
                    "RSA key of {modulus_bits} bits; accepted: {}..={} bits",
                    policy.rsa_min_bits, policy.rsa_max_bits
                ))
            } else {
                Ok(())
            }
        }
        KeyKind::Ec(curve) => {
            if policy
                .ec_curves
                .iter()
                .any(|c| c.eq_ignore_ascii_case(curve))
            {
                Ok(())
            } else {
                refuse(format!(
                    "EC curve {curve} not accepted; accepted: {}",
                    policy.ec_curves.join(", ")
                ))
            }
        }
        KeyKind::Ed25519 if policy.ed25519 => Ok(()),
        KeyKind::Ed25519 => refuse("Ed25519 keys are not accepted".into()),
    }
}

/// Everything that varies between certificates the CA signs.
#[derive(Debug)]
pub struct CertSpec<'a> {
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    pub spki_der: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
    /// Encoded `Extension`s.
    pub extensions: Vec<Vec<u8>>,
}

/// A signed certificate and its serial.
#[derive(Debug)]
pub struct Signed {
    pub der: Vec<u8>,
    pub serial_hex: String,
}

/// Assigns a serial, encodes the TBSCertificate and signs it with `key` (ECDSA P-256 SHA-256).
pub fn sign(
    spec: &CertSpec<'_>,
    key: &EcdsaKeyPair,
    rng: &SystemRandom,
) -> Result<Signed, CaError> {
    let serial = random_serial(rng)?;
    let time = |t: i64| {
        der::time(t).ok_or_else(|| CaError::Signing(format!("time {t} cannot be encoded")))
    };
    let algorithm = der::ecdsa_with_sha256();
    let tbs = der::tbs_certificate(&der::Tbs {
        serial: &der::positive_integer(&serial),
        signature_algorithm: &algorithm,
        issuer: spec.issuer,
        not_before: &time(spec.not_before)?,
        not_after: &time(spec.not_after)?,
        subject: spec.subject,
        spki: spec.spki_der,
        extensions: &spec.extensions,
    });
    let signature = key
        .sign(rng, &tbs)
        .map_err(|_| CaError::Signing("ECDSA signing failed".into()))?;
    Ok(Signed {
        der: der::certificate(&tbs, &algorithm, signature.as_ref()),
        serial_hex: super::decode::serial_hex(&serial),
    })
}

/// The extensions of a CA certificate (RFC 5280 §4.2.1.9, §4.2.1.3): CA:true (with `path_len`),
/// keyCertSign + cRLSign, SKI, and AKI when signed by another CA.
pub fn ca_extensions(path_len: Option<u8>, ski: &[u8], aki: Option<&[u8]>) -> Vec<Vec<u8>> {
    let mut exts = vec![
        der::extension(
            oids::BASIC_CONSTRAINTS,
            true,
            &der::basic_constraints(true, path_len),
        ),
        der::extension(
            oids::KEY_USAGE,
            true,
            &der::key_usage(&[der::KU_KEY_CERT_SIGN, der::KU_CRL_SIGN]),
        ),
        der::extension(
            oids::SUBJECT_KEY_IDENTIFIER,
            false,
            &der::subject_key_identifier(ski),
        ),
    ];
    if let Some(aki) = aki {
        exts.push(der::extension(
            oids::AUTHORITY_KEY_IDENTIFIER,
            false,
            &der::authority_key_identifier(aki),
        ));
    }
    exts
}

/// What a leaf carries besides its key and validity.
#[derive(Debug)]
pub struct LeafNames<'a> {
    pub dns_names: &'a [String],
    pub ip_addrs: &'a [IpAddr],
}

impl LeafNames<'_> {
    /// RFC 5280 §4.1.2.6 / CA/B BR §7.1.4.3: the CN, if any, repeats a SAN. The first DNS name
    /// that fits ub-common-name (64), else the first IP address, else no CN (empty subject).
    pub fn common_name(&self) -> Option<String> {
        self.dns_names
            .iter()
            .find(|n| n.len() <= 64)
            .cloned()
            .or_else(|| self.ip_addrs.first().map(|ip| ip.to_string()))
    }

    /// Refuses an empty set and DNS names that are not IA5 (ASCII) or are empty.
    pub fn validate(&self) -> Result<(), CaError> {
        if self.dns_names.is_empty() && self.ip_addrs.is_empty() {
            return Err(CaError::BadCsr("no identifiers to certify".into()));
        }
        match self
            .dns_names
            .iter()
            .find(|n| n.is_empty() || !n.is_ascii() || n.len() > 253)
        {
            Some(n) => Err(CaError::BadCsr(format!("{n:?} is not a DNS name"))),
            None => Ok(()),
        }
    }
}

/// URLs put in every leaf; empty strings are left out.
#[derive(Debug)]
pub struct LeafUrls<'a> {
    pub crl: &'a str,
    pub ca_issuers: &'a str,
}

/// The extensions of an end-entity certificate.
pub fn leaf_extensions(
    names: &LeafNames<'_>,
    subject_empty: bool,
    spki: &Spki,
    kind: &KeyKind,
    eku: ExtendedKeyUsage,
    issuer_key_id: &[u8],
    urls: &LeafUrls<'_>,
) -> Vec<Vec<u8>> {
    // RFC 5280 §4.2.1.3: keyEncipherment only makes sense for RSA (RSA key transport in TLS 1.2).
    let mut usage = vec![der::KU_DIGITAL_SIGNATURE];
    if matches!(kind, KeyKind::Rsa { .. }) {
        usage.push(der::KU_KEY_ENCIPHERMENT);
    }
    let purposes: &[ConstOid] = match eku {
        ExtendedKeyUsage::Server => &[oids::KP_SERVER_AUTH],
        ExtendedKeyUsage::Client => &[oids::KP_CLIENT_AUTH],
        ExtendedKeyUsage::Both => &[oids::KP_SERVER_AUTH, oids::KP_CLIENT_AUTH],
    };
    let mut exts = vec![
        der::extension(
            oids::BASIC_CONSTRAINTS,
            true,
            &der::basic_constraints(false, None),
        ),
        der::extension(oids::KEY_USAGE, true, &der::key_usage(&usage)),
        der::extension(oids::EXT_KEY_USAGE, false, &der::ext_key_usage(purposes)),
        der::extension(
            oids::SUBJECT_KEY_IDENTIFIER,
            false,
            &der::subject_key_identifier(&key_identifier(&spki.key)),
        ),
        der::extension(
            oids::AUTHORITY_KEY_IDENTIFIER,
            false,
            &der::authority_key_identifier(issuer_key_id),
        ),
    ];
    // Identities for the admin API are named by their subject alone.
    if !names.dns_names.is_empty() || !names.ip_addrs.is_empty() {
        // RFC 5280 §4.2.1.6: with an empty subject the SAN MUST be critical.
        exts.push(der::extension(
            oids::SUBJECT_ALT_NAME,
            subject_empty,
            &der::subject_alt_name(names.dns_names, names.ip_addrs),
        ));
    }
    if !urls.crl.is_empty() {
        exts.push(der::extension(
            oids::CRL_DISTRIBUTION_POINTS,
            false,
            &der::crl_distribution_points(urls.crl),
        ));
    }
    if !urls.ca_issuers.is_empty() {
        exts.push(der::extension(
            oids::AUTHORITY_INFO_ACCESS,
            false,
            &der::authority_info_access_ca_issuers(urls.ca_issuers),
        ));
    }
    exts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_16_positive_octets() {
        let rng = SystemRandom::new();
        for _ in 0..200 {
            let s = random_serial(&rng).unwrap();
            assert_eq!(s[0] & 0xc0, 0x40);
            assert_eq!(der::positive_integer(&s).len(), 2 + 16);
        }
    }

    #[test]
    fn key_policy_decisions() {
        let p = KeyPolicy::default();
        let rsa = |bits| KeyKind::Rsa {
            modulus_bits: bits,
            pss_only: false,
        };
        assert!(check_key_policy(&rsa(2048), &p).is_ok());
        assert!(check_key_policy(&rsa(4096), &p).is_ok());
        assert!(matches!(
            check_key_policy(&rsa(1024), &p),
            Err(CaError::KeyPolicy(_))
        ));
        assert!(check_key_policy(&rsa(16384), &p).is_err());
        assert!(check_key_policy(
            &KeyKind::Rsa {
                modulus_bits: 2048,
                pss_only: true
            },
            &p
        )
        .is_err());
        assert!(check_key_policy(&KeyKind::Ec("P-256".into()), &p).is_ok());
        assert!(check_key_policy(&KeyKind::Ec("P-384".into()), &p).is_ok());
        assert!(check_key_policy(&KeyKind::Ec("P-521".into()), &p).is_err());
        assert!(check_key_policy(&KeyKind::Ed25519, &p).is_ok());

        let strict = KeyPolicy {
            rsa_min_bits: 0,
            rsa_max_bits: 0,
            ec_curves: vec!["P-384".into()],
            ed25519: false,
        };
        assert!(check_key_policy(&rsa(2048), &strict).is_err());
        assert!(check_key_policy(&KeyKind::Ec("P-256".into()), &strict).is_err());
        assert!(check_key_policy(&KeyKind::Ed25519, &strict).is_err());
        assert!(check_key_policy(&KeyKind::Ec("P-384".into()), &strict).is_ok());
    }

    #[test]
    fn common_name_choice() {
        let long = format!("{}.example", "a".repeat(60));
        let dns = vec![long.clone(), "short.example".into()];
        let ips: Vec<IpAddr> = vec!["10.1.2.3".parse().unwrap()];
        let n = LeafNames {
            dns_names: &dns,
            ip_addrs: &ips,
        };
        assert_eq!(n.common_name().as_deref(), Some("short.example"));
        let only_long = vec![long];
        let n = LeafNames {
            dns_names: &only_long,
            ip_addrs: &ips,
        };
        assert_eq!(n.common_name().as_deref(), Some("10.1.2.3"));
        let n = LeafNames {
            dns_names: &only_long,
            ip_addrs: &[],
        };
        assert_eq!(n.common_name(), None);
        assert!(n.validate().is_ok());
        let n = LeafNames {
            dns_names: &[],
            ip_addrs: &[],
        };
        assert!(matches!(n.validate(), Err(CaError::BadCsr(_))));
        let bad = vec!["bücher.example".to_string()];
        let n = LeafNames {
            dns_names: &bad,
            ip_addrs: &[],
        };
        assert!(n.validate().is_err());
    }
}
