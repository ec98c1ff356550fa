//! The built-in certificate authority: a P-256 root and issuing intermediate generated on first
//! start, keys encrypted at rest, and issuance from verified ACME CSRs (x509-certificate, bcder,
//! ring).
//!
//! Layout: [`setup`] creates/loads the hierarchy, [`keystore`] encrypts keys at rest, [`csr`]
//! parses and verifies requests, [`issue`] builds and signs certificates, [`der`]/[`decode`]
//! are the ASN.1 helpers, [`signature`] verifies signatures, [`keys`] makes keys, CSRs and
//! PKCS#12 files for those that cannot make their own.

mod crl;
mod csr;
mod decode;
mod der;
mod issue;
pub mod keys;
mod keystore;
mod oids;
pub mod profile;

pub use crl::RevokedEntry;
pub use decode::CrlSummary;

mod setup;
mod signature;
#[cfg(test)]
pub(crate) mod testutil;

use std::net::IpAddr;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::EcdsaKeyPair;

use decode::{parse_spki, Spki};
pub use decode::{serial_hex, KeyKind};
/// PEM armour for DER (64-column base64), for certificates, CRLs and keys alike.
pub use der::pem;
use issue::{CertSpec, LeafNames, LeafUrls, CLOCK_SKEW_SECS};
pub use keystore::SecretBytes;

pub use profile::{ExtendedKeyUsage, KeyPolicy, Profile};

/// Name of the built-in CA in profiles' `issuer` key; issuer plugins are named by the operator.
pub const BUILTIN_ISSUER: &str = "builtin";

/// Errors of the CA layer. `BadCsr` and `KeyPolicy` are the client's fault (ACME `badCSR` /
/// `badPublicKey`); the rest are the gateway's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    #[error("bad CSR: {0}")]
    BadCsr(String),
    #[error("key refused by policy: {0}")]
    KeyPolicy(String),
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    #[error("CA key store: {0}")]
    KeyStore(String),
    #[error("failed to {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signing failed: {0}")]
    Signing(String),
    /// Generating, loading or packaging a key the gateway made (`keys`).
    #[error("{0}")]
    Keys(String),
}

/// Where the secret that encrypts the CA keys comes from.
#[derive(Clone)]
pub enum KeySecret {
    /// A passphrase (e.g. from `ACMEGATE_CA_PASSPHRASE`).
    Passphrase(String),
    /// A key file, created with 32 random bytes and mode 0600 if absent.
    File(std::path::PathBuf),
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// Names and URLs that go into the CA and the certificates it issues.
#[derive(Clone, Debug)]
pub struct CaSettings {
    /// Common name of the root, e.g. "acmegate Root CA".
    pub root_cn: String,
    /// Common name of the intermediate, e.g. "acmegate Issuing CA".
    pub intermediate_cn: String,
    /// Organization for both subjects.
    pub organization: String,
    /// CRL distribution point URL put in issued leaf certificates.
    pub crl_url: String,
    /// AIA caIssuers URL (DER of the intermediate) put in issued leaf certificates.
    pub ca_issuers_url: String,
}

/// A parsed CSR whose signature has been verified (RFC 2986).
#[derive(Clone, Debug)]
pub struct Csr {
    pub common_name: Option<String>,
    /// dNSName SANs, lower-cased, plus a CN that looks like a DNS name.
    pub dns_names: Vec<String>,
    /// iPAddress SANs (and a CN that parses as an IP).
    pub ip_addrs: Vec<IpAddr>,
    /// DER SubjectPublicKeyInfo of the requested key.
    pub spki_der: Vec<u8>,
    /// der of the whole CSR
    pub der: Vec<u8>,
}

/// Facts read from a certificate, for revocation and the admin side.
#[derive(Clone, Debug)]
pub struct CertificateInfo {
    /// Serial as lower-case hex without leading zeros.
    pub serial_hex: String,
    pub spki_der: Vec<u8>,
    pub dns_names: Vec<String>,
    pub ip_addrs: Vec<IpAddr>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub issuer_der: Vec<u8>,
    pub subject_cn: Option<String>,
    /// Subject organizational units, in order.
    pub subject_units: Vec<String>,
    /// DER content octets of the serialNumber INTEGER (for the ARI certID, RFC 9773 §4.1).
    pub serial_der: Vec<u8>,
    /// The keyIdentifier of the Authority Key Identifier, when the certificate has one.
    pub authority_key_id: Option<Vec<u8>>,
}

/// A freshly issued leaf with its chain.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    pub serial_hex: String,
    pub not_before: i64,
    pub not_after: i64,
    pub leaf_der: Vec<u8>,
    /// Leaf, intermediate: PEM, the order RFC 8555 §7.4.2 asks for.
    pub chain_pem: String,
}

/// The CA. Everything needed to issue is held in memory (no file I/O per issuance); the
/// intermediate's private key lives only inside ring's `EcdsaKeyPair`.
pub struct Ca {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    /// The intermediate's subject Name DER, copied verbatim as the leaves' issuer.
    intermediate_subject: Vec<u8>,
    /// The intermediate's SKI, the leaves' AKI.
    intermediate_key_id: Vec<u8>,
    intermediate_not_after: i64,
    signer: EcdsaKeyPair,
    rng: SystemRandom,
    settings: CaSettings,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("intermediate_not_after", &self.intermediate_not_after)
            .field("settings", &self.settings)
            .field("signer", &"<private key>")
            .finish_non_exhaustive()
    }
}

/// Lifetime of [`Ca::issue_tls_server`] certificates.
const TLS_SERVER_VALIDITY_SECS: i64 = 90 * 86_400;

impl Ca {
    /// Loads the root and intermediate from `dir`, or generates and stores them (keys encrypted
    /// with `secret`) when absent.
    ///
    /// Files: `root.pem`, `intermediate.pem` (0644) and `root.key.enc`, `intermediate.key.enc`
    /// (0600, see [`keystore`] for the format). A directory holding only some of them is refused
    /// rather than overwritten.
    pub fn load_or_create(
        dir: &Path,
        secret: &KeySecret,
        settings: &CaSettings,
    ) -> Result<Ca, CaError> {
        setup::load_or_create(dir, secret, settings)
    }

    /// Whether `dir` holds a CA (or part of one): [`Ca::load_or_create`] would load, not create.
    pub fn exists_in(dir: &Path) -> bool {
        setup::exists_in(dir)
    }

    /// SHA-256 of the root and of the intermediate certificate (DER), lower-case hex: what
    /// names this CA across replicas and restarts.
    pub fn fingerprints(&self) -> (String, String) {
        let hex = |der: &[u8]| {
            crate::hex::lower(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
        };
        (hex(&self.root_der), hex(&self.intermediate_der))
    }

    pub fn root_pem(&self) -> String {
        der::pem("CERTIFICATE", &self.root_der)
    }
    pub fn root_der(&self) -> Vec<u8> {
        self.root_der.clone()
    }
    pub fn intermediate_pem(&self) -> String {
        der::pem("CERTIFICATE", &self.intermediate_der)
    }
    pub fn intermediate_der(&self) -> Vec<u8> {
        self.intermediate_der.clone()
    }

    /// Issues a leaf for `csr` (already verified by [`parse_csr`]) with exactly the given SANs,
    /// under `profile`. Refuses keys the profile's key policy does not allow.
    pub fn issue(
        &self,
        csr: &Csr,
        dns_names: &[String],
        ip_addrs: &[IpAddr],
        profile: &Profile,
    ) -> Result<IssuedCertificate, CaError> {
        let spki = parse_spki(&csr.spki_der).map_err(CaError::BadCsr)?;
        let kind = spki.kind().map_err(CaError::KeyPolicy)?;
        issue::check_profile_key(&kind, profile)?;
        self.issue_leaf(
            &spki,
            &kind,
            &LeafNames {
                dns_names,
                ip_addrs,
            },
            profile.eku,
            i64::from(profile.validity_hours) * 3_600,
        )
    }

    /// A TLS server certificate chain (leaf, intermediate) and a fresh PKCS#8 key (never
    /// stored) for the gateway's own HTTPS listener. `names` are DNS names or IP literals.
    pub fn issue_tls_server(&self, names: &[String]) -> Result<(Vec<Vec<u8>>, Vec<u8>), CaError> {
        let mut dns_names = Vec::new();
        let mut ip_addrs = Vec::new();
        for name in names {
            let bare = name.trim_start_matches('[').trim_end_matches(']');
            match bare.parse::<IpAddr>() {
                Ok(ip) => ip_addrs.push(ip),
                Err(_) => dns_names.push(name.to_ascii_lowercase()),
            }
        }
        let (spki, pkcs8) = self.fresh_p256()?;
        let spki = parse_spki(&spki).map_err(CaError::Signing)?;
        let issued = self.issue_leaf(
            &spki,
            &KeyKind::Ec("P-256".into()),
            &LeafNames {
                dns_names: &dns_names,
                ip_addrs: &ip_addrs,
            },
            ExtendedKeyUsage::Server,
            TLS_SERVER_VALIDITY_SECS,
        )?;
        Ok((vec![issued.leaf_der, self.intermediate_der.clone()], pkcs8))
    }

    /// A client identity for the admin API: subject O=<CA organization>, OU=`unit` (the role
    /// marker), CN=`common_name`, clientAuth only, valid from `not_before` to `not_after`
    /// (Unix seconds; clipped to the intermediate's life). The key is `spki_der` when given
    /// (a renewal from a CSR), else a fresh P-256 key returned as PKCS#8.
    pub fn issue_identity(
        &self,
        common_name: &str,
        unit: &str,
        validity: (i64, i64),
        spki_der: Option<&[u8]>,
    ) -> Result<(IssuedCertificate, Option<Vec<u8>>), CaError> {
        if common_name.is_empty() || common_name.chars().count() > 64 {
            return Err(CaError::BadCsr(
                "an identity needs a common name of 1 to 64 characters".into(),
            ));
        }
        let (spki_der, pkcs8) = match spki_der {
            Some(der) => (der.to_vec(), None),
            None => {
                let (spki, pkcs8) = self.fresh_p256()?;
                (spki, Some(pkcs8))
            }
        };
        let spki = parse_spki(&spki_der).map_err(CaError::BadCsr)?;
        let kind = spki.kind().map_err(CaError::KeyPolicy)?;
        issue::check_key_policy(&kind, &KeyPolicy::default())?;
        let subject = der::name_with_unit(
            Some(&self.settings.organization),
            Some(unit),
            Some(common_name),
        );
        let issued = self.sign_leaf(
            &spki,
            &kind,
            subject,
            &LeafNames {
                dns_names: &[],
                ip_addrs: &[],
            },
            ExtendedKeyUsage::Client,
            validity,
        )?;
        Ok((issued, pkcs8))
    }

    /// A fresh P-256 key: its SubjectPublicKeyInfo and its PKCS#8 document.
    fn fresh_p256(&self) -> Result<(Vec<u8>, Vec<u8>), CaError> {
        let key = keys::PrivateKey::generate(keys::KeyType::P256)?;
        let spki = key.signer(keys::EcdsaEncoding::Asn1)?.spki();
        Ok((spki, key.pkcs8_der().to_vec()))
    }

    /// Signs an end-entity certificate for `spki` with the intermediate.
    fn issue_leaf(
        &self,
        spki: &Spki,
        kind: &KeyKind,
        names: &LeafNames<'_>,
        eku: ExtendedKeyUsage,
        validity_secs: i64,
    ) -> Result<IssuedCertificate, CaError> {
        names.validate()?;
        let now = chrono::Utc::now().timestamp();
        let common_name = names.common_name();
        let subject = der::name(None, common_name.as_deref());
        self.sign_leaf(
            spki,
            kind,
            subject,
            names,
            eku,
            (now - CLOCK_SKEW_SECS, now.saturating_add(validity_secs)),
        )
    }

    /// Signs a leaf with the given subject, names and validity (clipped to the intermediate's).
    fn sign_leaf(
        &self,
        spki: &Spki,
        kind: &KeyKind,
        subject: Vec<u8>,
        names: &LeafNames<'_>,
        eku: ExtendedKeyUsage,
        (not_before, not_after): (i64, i64),
    ) -> Result<IssuedCertificate, CaError> {
        let now = chrono::Utc::now().timestamp();
        if now >= self.intermediate_not_after {
            return Err(CaError::Signing("the CA intermediate has expired".into()));
        }
        // A leaf cannot outlive its issuer (RFC 5280 §6.1.3 would reject it); near the end of
        // the intermediate's life, leaves get shorter instead.
        let not_after = not_after.min(self.intermediate_not_after);
        let subject_empty = names.common_name().is_none() && subject.len() <= 2;
        let extensions = issue::leaf_extensions(
            names,
            subject_empty,
            spki,
            kind,
            eku,
            &self.intermediate_key_id,
            &LeafUrls {
                crl: &self.settings.crl_url,
                ca_issuers: &self.settings.ca_issuers_url,
            },
        );
        let signed = issue::sign(
            &CertSpec {
                issuer: &self.intermediate_subject,
                subject: &subject,
                spki_der: &spki.der,
                not_before,
                not_after,
                extensions,
            },
            &self.signer,
            &self.rng,
        )?;
        // RFC 8555 §7.4.2: the end-entity certificate first, then the issuer.
        let chain_pem = format!(
            "{}{}",
            der::pem("CERTIFICATE", &signed.der),
            der::pem("CERTIFICATE", &self.intermediate_der)
        );
        Ok(IssuedCertificate {
            serial_hex: signed.serial_hex,
            not_before,
            not_after,
            leaf_der: signed.der,
            chain_pem,
        })
    }
}

/// Parses a DER CSR, verifies its self-signature, refuses a CA:true basicConstraints request,
/// and returns its names and key.
///
/// Names: dNSName SANs (lower-cased) and iPAddress SANs from the extensionRequest attribute,
/// plus the subject CN when it reads as a host name or an IP address. SANs of other types are
/// refused, since no ACME order can authorize them (RFC 8555 §7.4).
pub fn parse_csr(der: &[u8]) -> Result<Csr, CaError> {
    csr::parse(der, None, csr::Possession::Verify)
}

/// [`parse_csr`] for a CSR that this gateway verified when an ACME client finalized its order
/// and stored for issuance: its signature is not verified a second time.
pub fn parse_stored_csr(der: &[u8]) -> Result<Csr, CaError> {
    csr::parse(der, None, csr::Possession::VerifiedOnReceipt)
}

/// [`parse_csr`] for an order under `profile`: the profile's key policy is checked before the
/// signature, so a key it refuses is refused as such (`KeyPolicy`, naming the key and the
/// policy) rather than as a signature that does not verify (ring checks RSA signatures only up
/// to 8192 bits).
pub fn parse_csr_for(der: &[u8], profile: &Profile) -> Result<Csr, CaError> {
    csr::parse(der, Some(profile), csr::Possession::Verify)
}

/// An AES-256-GCM key for `purpose`, derived from the secret that protects the CA keys: other
/// secrets at rest (plugin state) need no key of their own to manage.
pub fn purpose_key(secret: &KeySecret, purpose: &[u8]) -> Result<ring::aead::LessSafeKey, CaError> {
    let material = keystore::resolve(secret, &SystemRandom::new())?;
    keystore::purpose_key(&material, purpose)
}

/// Seals `plaintext` for storage under a [`purpose_key`]: base64 of a random nonce and the
/// AES-256-GCM ciphertext, with `aad` bound to it so that a value moved to another slot (row,
/// plugin key) does not open. The one way secrets other than the CA keys are kept at rest
/// (plugin state, managed certificates' keys).
pub fn seal_at_rest(
    key: &ring::aead::LessSafeKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<String, CaError> {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut nonce = [0u8; ring::aead::NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CaError::KeyStore("no randomness for sealing".into()))?;
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        ring::aead::Nonce::assume_unique_for_key(nonce),
        ring::aead::Aad::from(aad),
        &mut body,
    )
    .map_err(|_| CaError::KeyStore("sealing failed".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode([&nonce[..], &body].concat()))
}

/// Opens a value sealed by [`seal_at_rest`] with the same key and `aad`; `what` names it in
/// errors (a value changed in the database, moved, or sealed under another CA key secret).
pub fn open_at_rest(
    key: &ring::aead::LessSafeKey,
    aad: &[u8],
    sealed: &str,
    what: &str,
) -> Result<SecretBytes, CaError> {
    use base64::Engine;
    let failed = |why: &str| CaError::KeyStore(format!("{what} {why}"));
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|_| failed("is not base64"))?;
    if bytes.len() < ring::aead::NONCE_LEN {
        return Err(failed("is too short"));
    }
    let mut body = bytes.split_off(ring::aead::NONCE_LEN);
    let nonce =
        ring::aead::Nonce::try_assume_unique_for_key(&bytes).map_err(|_| failed("bad nonce"))?;
    let opened = key.open_in_place(nonce, ring::aead::Aad::from(aad), &mut body);
    let plain = match opened {
        Ok(plain) => plain.to_vec(),
        Err(_) => {
            return Err(failed(
                "does not open: changed in the database, or another CA key secret",
            ))
        }
    };
    body.iter_mut().for_each(|b| *b = 0);
    Ok(SecretBytes::new(plain))
}

/// An HMAC key for `purpose` from the CA key secret (the audit log's chain key).
pub fn purpose_hmac_key(secret: &KeySecret, purpose: &[u8]) -> Result<ring::hmac::Key, CaError> {
    let material = keystore::resolve(secret, &SystemRandom::new())?;
    keystore::purpose_hmac_key(&material, purpose)
}

/// The key of a DER SubjectPublicKeyInfo, for checking signatures made with it: its kind and
/// the subjectPublicKey octets (an RSAPublicKey, an EC point, an Ed25519 key), as ring takes
/// them.
pub fn public_key(spki_der: &[u8]) -> Result<(KeyKind, Vec<u8>), CaError> {
    let spki = parse_spki(spki_der).map_err(CaError::BadCertificate)?;
    let kind = spki.kind().map_err(CaError::BadCertificate)?;
    Ok((kind, spki.key.to_vec()))
}

/// What a DER CRL says of itself: validity and number of entries.
pub fn crl_summary(der: &[u8]) -> Result<CrlSummary, CaError> {
    decode::parse_crl(der).map_err(CaError::BadCertificate)
}

/// Reads serial, key, names and validity from a DER certificate.
pub fn certificate_info(der: &[u8]) -> Result<CertificateInfo, CaError> {
    let cert = decode::parse_certificate(der).map_err(CaError::BadCertificate)?;
    let names = match cert.extension(&oids::SUBJECT_ALT_NAME) {
        Some(ext) => decode::parse_alt_names(&ext.value).map_err(CaError::BadCertificate)?,
        None => decode::AltNames::default(),
    };
    let (subject_cn, subject_units) =
        decode::subject_fields(&cert.subject).map_err(CaError::BadCertificate)?;
    let authority_key_id = match cert.extension(&oids::AUTHORITY_KEY_IDENTIFIER) {
        Some(ext) => {
            decode::authority_key_identifier(&ext.value).map_err(CaError::BadCertificate)?
        }
        None => None,
    };
    Ok(CertificateInfo {
        serial_der: cert.serial.to_vec(),
        authority_key_id,
        subject_cn,
        subject_units,
        serial_hex: decode::serial_hex(&cert.serial),
        spki_der: cert.spki,
        dns_names: names.dns,
        ip_addrs: names.ips,
        not_before: cert.not_before,
        not_after: cert.not_after,
        issuer_der: cert.issuer,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    use openssl::x509::X509;
    use ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;

    use super::testutil::{
        csr_der, csr_with, openssl_verify, shared_ca, test_settings, text, webpki_verify_server,
        KeyType,
    };
    use super::*;

    const _: () = {
        const fn shareable<T: Send + Sync>() {}
        shareable::<Ca>();
    };

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn profile(eku: ExtendedKeyUsage, hours: u32) -> Profile {
        Profile {
            eku,
            validity_hours: hours,
            ..Profile::default_server()
        }
    }

    fn issue_for(kt: KeyType, dns: &[&str], ips: &[&str], p: &Profile) -> (Csr, IssuedCertificate) {
        let csr = parse_csr(&csr_with(kt, None, dns, ips, false)).unwrap();
        let ips: Vec<IpAddr> = ips.iter().map(|i| i.parse().unwrap()).collect();
        let issued = shared_ca().issue(&csr, &csr.dns_names, &ips, p).unwrap();
        (csr, issued)
    }

    #[test]
    fn create_then_reload_with_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        let secret = KeySecret::Passphrase("s3cret pass".into());
        let ca = Ca::load_or_create(&ca_dir, &secret, &test_settings()).unwrap();
        assert_eq!(
            files(&ca_dir),
            [
                "intermediate.key.enc",
                "intermediate.pem",
                "root.key.enc",
                "root.pem"
            ]
        );
        assert_eq!(
            fs::metadata(&ca_dir).unwrap().permissions().mode() & 0o777,
            0o700
        );

        // Key files: 0600, and neither PEM nor the PKCS#8 DER inside.
        let material = keystore::resolve(&secret, &SystemRandom::new()).unwrap();
        for name in ["root.key.enc", "intermediate.key.enc"] {
            let path = ca_dir.join(name);
            let meta = fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
            let sealed = fs::read(&path).unwrap();
            assert!(!sealed.windows(11).any(|w| w == b"PRIVATE KEY"), "{name}");
            let pkcs8 = keystore::open(&material, &sealed, name).unwrap();
            let pkcs8 = pkcs8.as_slice();
            assert!(EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_ASN1_SIGNING,
                pkcs8,
                &SystemRandom::new()
            )
            .is_ok());
            assert!(
                !pkcs8
                    .windows(16)
                    .any(|w| sealed.windows(16).any(|s| s == w)),
                "{name} contains plaintext key bytes"
            );
        }
        assert_eq!(
            fs::read_to_string(ca_dir.join("root.pem")).unwrap(),
            ca.root_pem()
        );
        assert_eq!(
            fs::read_to_string(ca_dir.join("intermediate.pem")).unwrap(),
            ca.intermediate_pem()
        );

        // Second start: same hierarchy, and the reloaded intermediate key signs verifiable leaves.
        let again = Ca::load_or_create(&ca_dir, &secret, &test_settings()).unwrap();
        assert_eq!(again.root_der(), ca.root_der());
        assert_eq!(again.intermediate_der(), ca.intermediate_der());
        let csr = parse_csr(&csr_der(KeyType::P256, None, &["reload.example"])).unwrap();
        let issued = again
            .issue(&csr, &csr.dns_names, &[], &Profile::default_server())
            .unwrap();
        openssl_verify(&ca, &issued.leaf_der).unwrap();

        // Wrong passphrase: refused with a hint.
        let wrong = KeySecret::Passphrase("not it".into());
        match Ca::load_or_create(&ca_dir, &wrong, &test_settings()) {
            Err(CaError::KeyStore(m)) => {
                assert!(
                    m.contains("cannot decrypt") && m.contains("wrong passphrase"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn key_file_secret_reload_and_incomplete_dir_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        let secret = KeySecret::File(dir.path().join("keys/ca.key"));
        let ca = Ca::load_or_create(&ca_dir, &secret, &test_settings()).unwrap();
        let again = Ca::load_or_create(&ca_dir, &secret, &test_settings()).unwrap();
        assert_eq!(again.root_der(), ca.root_der());

        // Another key file cannot open it.
        let other = KeySecret::File(dir.path().join("other.key"));
        assert!(matches!(
            Ca::load_or_create(&ca_dir, &other, &test_settings()),
            Err(CaError::KeyStore(_))
        ));

        // A missing file is refused, not papered over with a new CA.
        fs::remove_file(ca_dir.join("intermediate.pem")).unwrap();
        match Ca::load_or_create(&ca_dir, &secret, &test_settings()) {
            Err(CaError::KeyStore(m)) => assert!(m.contains("incomplete"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(!ca_dir.join("intermediate.pem").exists());
    }

    #[test]
    fn hierarchy_is_a_valid_ca_chain_for_openssl() {
        let ca = shared_ca();
        let root = X509::from_der(&ca.root_der()).unwrap();
        let inter = X509::from_der(&ca.intermediate_der()).unwrap();
        assert!(root.verify(&root.public_key().unwrap()).unwrap());
        assert!(inter.verify(&root.public_key().unwrap()).unwrap());
        assert_eq!(inter.pathlen(), Some(0));
        assert_eq!(
            inter.authority_key_id().unwrap().as_slice(),
            root.subject_key_id().unwrap().as_slice()
        );
        let rt = text(&ca.root_der());
        assert!(
            rt.contains("X509v3 Basic Constraints: critical\n                CA:TRUE"),
            "{rt}"
        );
        assert!(
            rt.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
            "{rt}"
        );
        assert!(rt.contains("ecdsa-with-SHA256") && rt.contains("prime256v1"));
        assert!(rt.contains("CN=acmegate Test Root CA"));
        let it = text(&ca.intermediate_der());
        assert!(it.contains("CA:TRUE, pathlen:0"), "{it}");
        assert!(it.contains("CN=acmegate Test Issuing CA"));
        let days = |x: &X509| x.not_before().diff(x.not_after()).unwrap().days;
        assert!((3651..=3653).contains(&days(&root)), "{}", days(&root));
        assert!((1825..=1827).contains(&days(&inter)), "{}", days(&inter));
    }

    #[test]
    fn issued_leaves_verify_and_carry_the_profile() {
        let ca = shared_ca();
        let intermediate = X509::from_der(&ca.intermediate_der()).unwrap();
        for (kt, eku, want_eku, want_ku) in [
            (
                KeyType::P256,
                ExtendedKeyUsage::Server,
                "TLS Web Server Authentication\n",
                "Digital Signature\n",
            ),
            (
                KeyType::P384,
                ExtendedKeyUsage::Client,
                "TLS Web Client Authentication\n",
                "Digital Signature\n",
            ),
            (
                KeyType::Rsa(2048),
                ExtendedKeyUsage::Both,
                "TLS Web Server Authentication, TLS Web Client Authentication\n",
                "Digital Signature, Key Encipherment\n",
            ),
            (
                KeyType::Ed25519,
                ExtendedKeyUsage::Server,
                "TLS Web Server Authentication\n",
                "Digital Signature\n",
            ),
        ] {
            let p = profile(eku, 48);
            let (csr, issued) = issue_for(kt, &["a.example", "b.example"], &["192.0.2.1"], &p);
            openssl_verify(ca, &issued.leaf_der).unwrap_or_else(|e| panic!("{kt:?}: {e}"));
            let as_server = webpki_verify_server(ca, &issued.leaf_der, "b.example");
            if eku == ExtendedKeyUsage::Client {
                assert!(
                    as_server.is_err(),
                    "a client-only leaf must not pass as a server"
                );
            } else {
                as_server.unwrap_or_else(|e| panic!("{kt:?}: {e}"));
                webpki_verify_server(ca, &issued.leaf_der, "192.0.2.1").unwrap();
                assert!(webpki_verify_server(ca, &issued.leaf_der, "c.example").is_err());
            }
            let leaf = X509::from_der(&issued.leaf_der).unwrap();

            let sans = leaf.subject_alt_names().unwrap();
            let dns: Vec<&str> = sans.iter().filter_map(|n| n.dnsname()).collect();
            let ips: Vec<&[u8]> = sans.iter().filter_map(|n| n.ipaddress()).collect();
            assert_eq!(dns, ["a.example", "b.example"]);
            assert_eq!(ips, [&[192u8, 0, 2, 1][..]]);
            assert_eq!(sans.len(), 3);

            let t = text(&issued.leaf_der);
            assert!(
                t.contains(&format!(
                    "X509v3 Extended Key Usage: \n                {want_eku}"
                )),
                "{kt:?}\n{t}"
            );
            assert!(
                t.contains(&format!(
                    "X509v3 Key Usage: critical\n                {want_ku}"
                )),
                "{kt:?}\n{t}"
            );
            assert!(
                t.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"),
                "{t}"
            );
            assert!(t.contains("URI:http://ca.test/crl"), "{t}");
            assert!(
                t.contains("CA Issuers - URI:http://ca.test/intermediate.der"),
                "{t}"
            );
            assert!(t.contains("Subject: CN=a.example"), "{t}");
            assert!(
                t.contains("X509v3 Subject Alternative Name: \n"),
                "SAN must not be critical\n{t}"
            );

            assert_eq!(
                leaf.authority_key_id().unwrap().as_slice(),
                intermediate.subject_key_id().unwrap().as_slice()
            );
            let ski = leaf.subject_key_id().unwrap().as_slice().to_vec();
            let spki = decode::parse_spki(&csr.spki_der).unwrap();
            assert_eq!(ski, issue::key_identifier(&spki.key));
            assert_eq!(
                leaf.public_key().unwrap().public_key_to_der().unwrap(),
                csr.spki_der,
                "{kt:?}: SPKI must be copied verbatim"
            );
            assert_eq!(leaf.not_before().diff(leaf.not_after()).unwrap().secs, 60);
            assert_eq!(leaf.not_before().diff(leaf.not_after()).unwrap().days, 2);
            assert_eq!(issued.not_after - issued.not_before, 48 * 3600 + 60);

            // chain_pem: leaf then intermediate.
            let chain = X509::stack_from_pem(issued.chain_pem.as_bytes()).unwrap();
            assert_eq!(chain.len(), 2);
            assert_eq!(chain[0].to_der().unwrap(), issued.leaf_der);
            assert_eq!(chain[1].to_der().unwrap(), ca.intermediate_der());
        }
    }

    #[test]
    fn subject_falls_back_to_ip_then_empty_with_critical_san() {
        let ca = shared_ca();
        let (_, issued) = issue_for(
            KeyType::P256,
            &[],
            &["2001:db8::7", "10.0.0.1"],
            &Profile::default_server(),
        );
        openssl_verify(ca, &issued.leaf_der).unwrap();
        let t = text(&issued.leaf_der);
        // No DNS name: CN = first IP address, so the subject is not empty and SAN not critical.
        assert!(t.contains("Subject: CN=2001:db8::7"), "{t}");
        assert!(t.contains("X509v3 Subject Alternative Name: \n"), "{t}");

        // With only an over-long DNS name: no CN, empty subject, critical SAN.
        let long = format!("{}.example", "x".repeat(60));
        let csr = parse_csr(&csr_der(KeyType::P256, None, &[&long])).unwrap();
        let issued = ca
            .issue(&csr, &csr.dns_names, &[], &Profile::default_server())
            .unwrap();
        openssl_verify(ca, &issued.leaf_der).unwrap();
        webpki_verify_server(ca, &issued.leaf_der, &long).unwrap();
        let leaf = X509::from_der(&issued.leaf_der).unwrap();
        assert_eq!(leaf.subject_name().entries().count(), 0);
        assert!(text(&issued.leaf_der).contains("X509v3 Subject Alternative Name: critical\n"));
    }

    #[test]
    fn only_the_given_names_are_certified() {
        let ca = shared_ca();
        let csr = parse_csr(&csr_der(
            KeyType::P256,
            Some("a.example"),
            &["a.example", "b.example"],
        ))
        .unwrap();
        let issued = ca
            .issue(
                &csr,
                &["b.example".to_string()],
                &[],
                &Profile::default_server(),
            )
            .unwrap();
        let info = certificate_info(&issued.leaf_der).unwrap();
        assert_eq!(info.dns_names, ["b.example"]);
        assert!(info.ip_addrs.is_empty());
        assert!(matches!(
            ca.issue(&csr, &[], &[], &Profile::default_server()),
            Err(CaError::BadCsr(_))
        ));
    }

    #[test]
    fn key_policy_is_enforced() {
        let ca = shared_ca();
        let csr = parse_csr(&csr_der(KeyType::Rsa(1024), None, &["weak.example"])).unwrap();
        match ca.issue(&csr, &csr.dns_names, &[], &Profile::default_server()) {
            Err(CaError::KeyPolicy(m)) => assert!(m.contains("1024"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut p = Profile::default_server();
        p.key_policy.ed25519 = false;
        let csr = parse_csr(&csr_der(KeyType::Ed25519, None, &["ed.example"])).unwrap();
        assert!(matches!(
            ca.issue(&csr, &csr.dns_names, &[], &p),
            Err(CaError::KeyPolicy(_))
        ));
        p.key_policy.ec_curves = vec!["P-384".into()];
        let csr = parse_csr(&csr_der(KeyType::P256, None, &["ec.example"])).unwrap();
        assert!(matches!(
            ca.issue(&csr, &csr.dns_names, &[], &p),
            Err(CaError::KeyPolicy(_))
        ));
    }

    #[test]
    fn serials_are_unique_and_positive_over_1000_issues() {
        let ca = shared_ca();
        let csr = parse_csr(&csr_der(KeyType::P256, None, &["serial.example"])).unwrap();
        let p = Profile::default_server();
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let issued = ca.issue(&csr, &csr.dns_names, &[], &p).unwrap();
            // 16 octets with the top bit clear: 31 or 32 hex digits, never negative.
            assert!(
                (31..=32).contains(&issued.serial_hex.len()),
                "{}",
                issued.serial_hex
            );
            assert!(seen.insert(issued.serial_hex));
        }
        let issued = ca.issue(&csr, &csr.dns_names, &[], &p).unwrap();
        let leaf = X509::from_der(&issued.leaf_der).unwrap();
        let bn = leaf.serial_number().to_bn().unwrap();
        assert!(!bn.is_negative());
        assert!(bn.num_bits() >= 64);
        assert_eq!(
            bn.to_hex_str().unwrap().to_ascii_lowercase(),
            issued.serial_hex
        );
    }

    #[test]
    fn certificate_info_reads_what_was_issued() {
        let ca = shared_ca();
        let (csr, issued) = issue_for(
            KeyType::Ed25519,
            &["info.example"],
            &["::1"],
            &Profile::default_server(),
        );
        let info = certificate_info(&issued.leaf_der).unwrap();
        assert_eq!(info.serial_hex, issued.serial_hex);
        assert_eq!(info.spki_der, csr.spki_der);
        assert_eq!(info.dns_names, ["info.example"]);
        assert_eq!(info.ip_addrs, ["::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(info.not_before, issued.not_before);
        assert_eq!(info.not_after, issued.not_after);
        let inter = X509::from_der(&ca.intermediate_der()).unwrap();
        assert_eq!(info.issuer_der, inter.subject_name().to_der().unwrap());
        assert!(matches!(
            certificate_info(b"junk"),
            Err(CaError::BadCertificate(_))
        ));
        let root = certificate_info(&ca.root_der()).unwrap();
        assert!(root.dns_names.is_empty());
    }

    #[test]
    fn leaf_never_outlives_the_intermediate() {
        let ca = shared_ca();
        // 20 years requested; the intermediate has 5.
        let (_, issued) = issue_for(
            KeyType::P256,
            &["long.example"],
            &[],
            &profile(ExtendedKeyUsage::Server, 20 * 365 * 24),
        );
        assert_eq!(issued.not_after, ca.intermediate_not_after);
        openssl_verify(ca, &issued.leaf_der).unwrap();
    }

    #[test]
    fn tls_server_certificate_loads_into_rustls() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        let ca = Ca::load_or_create(
            &ca_dir,
            &KeySecret::File(dir.path().join("k")),
            &test_settings(),
        )
        .unwrap();
        let before = files(&ca_dir);
        let names = ["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let (chain, key) = ca.issue_tls_server(&names).unwrap();
        assert_eq!(files(&ca_dir), before, "the TLS key must not be stored");
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1], ca.intermediate_der());
        openssl_verify(&ca, &chain[0]).unwrap();
        for name in ["localhost", "127.0.0.1", "::1"] {
            webpki_verify_server(&ca, &chain[0], name).unwrap();
        }
        let info = certificate_info(&chain[0]).unwrap();
        assert_eq!(info.dns_names, ["localhost"]);
        assert_eq!(
            info.ip_addrs,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(info.not_after - info.not_before, 90 * 86_400 + 60);
        assert!(text(&chain[0]).contains("TLS Web Server Authentication"));

        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> =
            chain.into_iter().map(CertificateDer::from).collect();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)));
        assert!(config.is_ok(), "{:?}", config.err());
    }
}
