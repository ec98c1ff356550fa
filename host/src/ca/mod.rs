//! The built-in certificate authority: a P-256 root and issuing intermediate generated on first
//! start, keys encrypted at rest, and issuance from verified ACME CSRs (x509-certificate).
//!
//! Keys and certificates are built with x509-certificate's key pairs and a small DER
//! encoder (`der`), since issuing for a CSR's key and 128-bit serials go beyond its builder.

mod csr;
mod der;
mod keystore;
pub mod profile;

use std::net::IpAddr;
use std::path::Path;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ring::rand::SecureRandom;
use x509_certificate::{InMemorySigningKeyPair, Sign, Signer};

pub use csr::KeyKind;
use der::{children, expect, oid_string};

pub use profile::{ExtendedKeyUsage, KeyPolicy, Profile};

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

/// How long the generated root lives: long enough that rotation is a rare, planned event.
const ROOT_VALIDITY_DAYS: i64 = 3650;
/// The intermediate expires well before the root, so it can be replaced under the same root.
const INTERMEDIATE_VALIDITY_DAYS: i64 = 1825;
/// The listener certificate is reissued at every start; 90 days covers long-running servers.
const TLS_SERVER_VALIDITY_DAYS: i64 = 90;
/// Leaves are backdated so that clients with slightly slow clocks accept them at once.
const BACKDATE_SECONDS: i64 = 60;
/// Serial numbers: 16 random bytes with the top bit cleared (positive, 127 random bits; RFC
/// 5280 §4.1.2.2 allows up to 20 octets, CA/B BR ask for 64 random bits at least).
const SERIAL_BYTES: usize = 16;

const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_O: &str = "2.5.4.10";
const OID_CN: &str = "2.5.4.3";
const OID_SKI: &str = "2.5.29.14";
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_AKI: &str = "2.5.29.35";
const OID_EKU: &str = "2.5.29.37";
const OID_CRL_DP: &str = "2.5.29.31";
const OID_AIA: &str = "1.3.6.1.5.5.7.1.1";
const OID_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";
const OID_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const OID_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// keyUsage bits (RFC 5280 §4.2.1.3) as the first octet of the BIT STRING.
const KU_DIGITAL_SIGNATURE: u8 = 0x80;
const KU_KEY_ENCIPHERMENT: u8 = 0x20;
const KU_KEY_CERT_SIGN: u8 = 0x04;
const KU_CRL_SIGN: u8 = 0x02;

/// A certificate authority level: its certificate and signing key.
struct Authority {
    cert_der: Vec<u8>,
    /// Raw DER of the certificate's subject Name, the issuer of what it signs.
    subject_der: Vec<u8>,
    key_id: Vec<u8>,
    key: InMemorySigningKeyPair,
}

/// The CA: a root (used only to sign the intermediate) and the intermediate that issues.
pub struct Ca {
    root: Authority,
    intermediate: Authority,
    settings: CaSettings,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are never printed.
        f.debug_struct("Ca")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn signing(e: impl std::fmt::Display) -> CaError {
    CaError::Signing(e.to_string())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_to_der(text: &str) -> Result<Vec<u8>, CaError> {
    let mut reader = std::io::BufReader::new(text.as_bytes());
    let first = rustls_pemfile::certs(&mut reader).next();
    match first {
        Some(Ok(c)) => Ok(c.to_vec()),
        _ => Err(CaError::BadCertificate("no certificate in PEM".into())),
    }
}

/// A Name with an optional organization and a common name.
fn name(org: &str, cn: &str) -> Vec<u8> {
    let atv = |oid: &str, value: &str| {
        der::cons(
            der::SET,
            &[&der::seq(&[
                &der::oid(oid),
                &der::tlv(der::UTF8_STRING, value.as_bytes()),
            ])],
        )
    };
    let mut rdns = Vec::new();
    if !org.is_empty() {
        rdns.extend(atv(OID_O, org));
    }
    if !cn.is_empty() {
        rdns.extend(atv(OID_CN, cn));
    }
    der::tlv(der::SEQUENCE, &rdns)
}

fn extension(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let crit = if critical {
        der::boolean(true)
    } else {
        Vec::new()
    };
    der::seq(&[&der::oid(oid), &crit, &der::tlv(der::OCTET_STRING, value)])
}

fn key_usage(bits: u8) -> Vec<u8> {
    let unused = bits.trailing_zeros().min(7) as u8;
    der::tlv(der::BIT_STRING, &[unused, bits])
}

/// SubjectKeyIdentifier method 1 of RFC 5280 §4.2.1.2: SHA-1 of the subjectPublicKey bits.
fn key_id(spki: &[u8]) -> Result<Vec<u8>, CaError> {
    let (_, bits) = csr::parse_spki(spki).map_err(|e| CaError::BadCertificate(e.to_string()))?;
    Ok(
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bits)
            .as_ref()
            .to_vec(),
    )
}

fn random_serial() -> Result<Vec<u8>, CaError> {
    let mut serial = [0u8; SERIAL_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CaError::Signing("random generator failed".into()))?;
    serial[0] &= 0x7f;
    if serial[0] == 0 {
        serial[0] = 0x01; // keep the full length, so the serial is always 16 octets
    }
    Ok(serial.to_vec())
}

fn hex(bytes: &[u8]) -> String {
    let s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// SubjectPublicKeyInfo of an x509-certificate key pair.
fn spki_of(key: &InMemorySigningKeyPair) -> Result<Vec<u8>, CaError> {
    let alg = match key.key_algorithm() {
        Some(x509_certificate::KeyAlgorithm::Ecdsa(x509_certificate::EcdsaCurve::Secp256r1)) => {
            der::seq(&[&der::oid(csr::OID_EC), &der::oid(csr::OID_P256)])
        }
        other => {
            return Err(CaError::Signing(format!(
                "unsupported CA key algorithm {other:?}"
            )))
        }
    };
    Ok(der::seq(&[&alg, &der::bit_string(&key.public_key_data())]))
}

fn new_p256_pkcs8() -> Result<Vec<u8>, CaError> {
    let rng = ring::rand::SystemRandom::new();
    ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .map(|d| d.as_ref().to_vec())
    .map_err(|_| CaError::Signing("key generation failed".into()))
}

fn load_key(pkcs8: &[u8]) -> Result<InMemorySigningKeyPair, CaError> {
    InMemorySigningKeyPair::from_pkcs8_der(pkcs8)
        .map_err(|e| CaError::KeyStore(format!("unreadable key: {e}")))
}

/// Everything that differs between the certificates this CA signs.
struct CertSpec<'a> {
    subject: &'a [u8],
    spki: &'a [u8],
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    extensions: Vec<Vec<u8>>,
}

/// Signs a certificate for `spec` with `issuer_key`, naming `issuer_name` as its issuer.
fn sign_certificate(
    spec: &CertSpec<'_>,
    issuer_name: &[u8],
    issuer_key: &InMemorySigningKeyPair,
) -> Result<(Vec<u8>, Vec<u8>), CaError> {
    let serial = random_serial()?;
    let sig_alg = der::seq(&[&der::oid(OID_ECDSA_SHA256)]);
    let version = der::cons(der::context(0, true), &[&der::unsigned_integer(&[2])]);
    let validity = der::seq(&[&der::time(spec.not_before), &der::time(spec.not_after)]);
    let exts = der::cons(
        der::context(3, true),
        &[&der::tlv(der::SEQUENCE, &spec.extensions.concat())],
    );
    let tbs = der::seq(&[
        &version,
        &der::unsigned_integer(&serial),
        &sig_alg,
        issuer_name,
        &validity,
        spec.subject,
        spec.spki,
        &exts,
    ]);
    let signature = issuer_key.try_sign(&tbs).map_err(signing)?;
    let cert = der::seq(&[&tbs, &sig_alg, &der::bit_string(signature.as_ref())]);
    Ok((cert, serial))
}

fn now() -> DateTime<Utc> {
    // Whole seconds: certificate times carry no fractions.
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default()
}

impl Ca {
    /// Loads the root and intermediate from `dir`, or generates and stores them (keys encrypted
    /// with `secret`) when absent.
    pub fn load_or_create(
        dir: &Path,
        secret: &KeySecret,
        settings: &CaSettings,
    ) -> Result<Ca, CaError> {
        let file = |n: &str| dir.join(n);
        let io = |action: String| move |source| CaError::Io { action, source };
        if !file("root.pem").exists() {
            Self::create(dir, secret, settings)?;
        }
        let load = |role: &str| -> Result<Authority, CaError> {
            let cert_pem = std::fs::read_to_string(file(&format!("{role}.pem")))
                .map_err(io(format!("read {role}.pem")))?;
            let cert_der = pem_to_der(&cert_pem)?;
            let key = load_key(&keystore::open(
                &file(&format!("{role}.key.enc")),
                role,
                secret,
            )?)?;
            let tbs = Tbs::parse(&cert_der)?;
            if spki_of(&key)? != tbs.spki {
                return Err(CaError::KeyStore(format!(
                    "{role}.key.enc does not belong to {role}.pem"
                )));
            }
            Ok(Authority {
                key_id: key_id(&tbs.spki)?,
                subject_der: tbs.subject.clone(),
                cert_der,
                key,
            })
        };
        Ok(Ca {
            root: load("root")?,
            intermediate: load("intermediate")?,
            settings: settings.clone(),
        })
    }

    fn create(dir: &Path, secret: &KeySecret, s: &CaSettings) -> Result<(), CaError> {
        let root_pkcs8 = new_p256_pkcs8()?;
        let root_key = load_key(&root_pkcs8)?;
        let root_spki = spki_of(&root_key)?;
        let root_id = key_id(&root_spki)?;
        let root_name = name(&s.organization, &s.root_cn);
        let t = now();
        let (root_cert, _) = sign_certificate(
            &CertSpec {
                subject: &root_name,
                spki: &root_spki,
                not_before: t - Duration::seconds(BACKDATE_SECONDS),
                not_after: t + Duration::days(ROOT_VALIDITY_DAYS),
                extensions: vec![
                    extension(
                        csr::OID_BASIC_CONSTRAINTS,
                        true,
                        &der::seq(&[&der::boolean(true)]),
                    ),
                    extension(
                        OID_KEY_USAGE,
                        true,
                        &key_usage(KU_KEY_CERT_SIGN | KU_CRL_SIGN),
                    ),
                    extension(OID_SKI, false, &der::tlv(der::OCTET_STRING, &root_id)),
                ],
            },
            &root_name,
            &root_key,
        )?;
        let int_pkcs8 = new_p256_pkcs8()?;
        let int_key = load_key(&int_pkcs8)?;
        let int_spki = spki_of(&int_key)?;
        let int_name = name(&s.organization, &s.intermediate_cn);
        let (int_cert, _) = sign_certificate(
            &CertSpec {
                subject: &int_name,
                spki: &int_spki,
                not_before: t - Duration::seconds(BACKDATE_SECONDS),
                not_after: t + Duration::days(INTERMEDIATE_VALIDITY_DAYS),
                extensions: vec![
                    // pathLenConstraint 0: the intermediate issues leaves only.
                    extension(
                        csr::OID_BASIC_CONSTRAINTS,
                        true,
                        &der::seq(&[&der::boolean(true), &der::unsigned_integer(&[0])]),
                    ),
                    extension(
                        OID_KEY_USAGE,
                        true,
                        &key_usage(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN),
                    ),
                    extension(
                        OID_SKI,
                        false,
                        &der::tlv(der::OCTET_STRING, &key_id(&int_spki)?),
                    ),
                    extension(
                        OID_AKI,
                        false,
                        &der::seq(&[&der::tlv(der::context(0, false), &root_id)]),
                    ),
                ],
            },
            &root_name,
            &root_key,
        )?;
        keystore::seal(&dir.join("root.key.enc"), "root", &root_pkcs8, secret)?;
        keystore::seal(
            &dir.join("intermediate.key.enc"),
            "intermediate",
            &int_pkcs8,
            secret,
        )?;
        let write = |n: &str, der: &[u8]| {
            std::fs::write(dir.join(n), pem("CERTIFICATE", der)).map_err(|source| CaError::Io {
                action: format!("write {n}"),
                source,
            })
        };
        write("intermediate.pem", &int_cert)?;
        // The root goes last: its presence is what marks the CA as created.
        write("root.pem", &root_cert)?;
        tracing::info!(dir = %dir.display(), "generated a new root and intermediate CA");
        Ok(())
    }

    pub fn root_pem(&self) -> String {
        pem("CERTIFICATE", &self.root.cert_der)
    }
    pub fn root_der(&self) -> Vec<u8> {
        self.root.cert_der.clone()
    }
    pub fn intermediate_pem(&self) -> String {
        pem("CERTIFICATE", &self.intermediate.cert_der)
    }
    pub fn intermediate_der(&self) -> Vec<u8> {
        self.intermediate.cert_der.clone()
    }

    /// Checks a subject key against a profile's key policy.
    fn check_key_policy(spki: &[u8], policy: &KeyPolicy) -> Result<(), CaError> {
        let (kind, _) = csr::parse_spki(spki)?;
        match &kind {
            KeyKind::Rsa { bits }
                if policy.rsa_min_bits > 0
                    && (policy.rsa_min_bits as usize..=policy.rsa_max_bits as usize)
                        .contains(bits) =>
            {
                Ok(())
            }
            KeyKind::Rsa { bits } => Err(CaError::KeyPolicy(format!(
                "RSA key of {bits} bits; this profile accepts {}..={} bits",
                policy.rsa_min_bits, policy.rsa_max_bits
            ))),
            KeyKind::Ec { curve } if policy.ec_curves.iter().any(|c| c == curve) => Ok(()),
            KeyKind::Ec { curve } => Err(CaError::KeyPolicy(format!(
                "EC curve {curve} is not among {:?}",
                policy.ec_curves
            ))),
            KeyKind::Ed25519 if policy.ed25519 => Ok(()),
            KeyKind::Ed25519 => Err(CaError::KeyPolicy(
                "Ed25519 keys are not accepted by this profile".into(),
            )),
        }
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
        Self::check_key_policy(&csr.spki_der, &profile.key_policy)?;
        let (kind, _) = csr::parse_spki(&csr.spki_der)?;
        let t = now();
        let not_before = t - Duration::seconds(BACKDATE_SECONDS);
        let not_after = t + Duration::hours(i64::from(profile.validity_hours));
        let leaf = self.leaf(
            &csr.spki_der,
            matches!(kind, KeyKind::Rsa { .. }),
            dns_names,
            ip_addrs,
            profile.eku,
            not_before,
            not_after,
        )?;
        Ok(IssuedCertificate {
            serial_hex: hex(&leaf.1),
            not_before: not_before.timestamp(),
            not_after: not_after.timestamp(),
            chain_pem: format!("{}{}", pem("CERTIFICATE", &leaf.0), self.intermediate_pem()),
            leaf_der: leaf.0,
        })
    }

    #[allow(clippy::too_many_arguments)] // one private builder, called from two places
    fn leaf(
        &self,
        spki: &[u8],
        rsa: bool,
        dns: &[String],
        ips: &[IpAddr],
        eku: ExtendedKeyUsage,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<(Vec<u8>, Vec<u8>), CaError> {
        if dns.is_empty() && ips.is_empty() {
            return Err(CaError::BadCsr(
                "a certificate needs at least one name".into(),
            ));
        }
        let cn = dns
            .iter()
            .find(|n| n.len() <= 64)
            .cloned()
            .or_else(|| ips.first().map(IpAddr::to_string))
            .unwrap_or_default();
        let subject = name("", &cn);
        let mut sans = Vec::new();
        for n in dns {
            sans.extend(der::tlv(der::context(2, false), n.as_bytes()));
        }
        for ip in ips {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            sans.extend(der::tlv(der::context(7, false), &bytes));
        }
        let ekus: Vec<Vec<u8>> = match eku {
            ExtendedKeyUsage::Server => vec![der::oid(OID_SERVER_AUTH)],
            ExtendedKeyUsage::Client => vec![der::oid(OID_CLIENT_AUTH)],
            ExtendedKeyUsage::Both => vec![der::oid(OID_SERVER_AUTH), der::oid(OID_CLIENT_AUTH)],
        };
        let uri = |u: &str| der::tlv(der::context(6, false), u.as_bytes());
        let ku = if rsa {
            KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT
        } else {
            KU_DIGITAL_SIGNATURE
        };
        let extensions = vec![
            extension(csr::OID_BASIC_CONSTRAINTS, true, &der::seq(&[])),
            extension(OID_KEY_USAGE, true, &key_usage(ku)),
            extension(OID_EKU, false, &der::tlv(der::SEQUENCE, &ekus.concat())),
            extension(OID_SKI, false, &der::tlv(der::OCTET_STRING, &key_id(spki)?)),
            extension(
                OID_AKI,
                false,
                &der::seq(&[&der::tlv(der::context(0, false), &self.intermediate.key_id)]),
            ),
            // RFC 5280 §4.2.1.6: with an empty subject the SAN extension is critical.
            extension(csr::OID_SAN, cn.is_empty(), &der::tlv(der::SEQUENCE, &sans)),
            extension(
                OID_CRL_DP,
                false,
                &der::seq(&[&der::seq(&[&der::cons(
                    der::context(0, true),
                    &[&der::cons(
                        der::context(0, true),
                        &[&uri(&self.settings.crl_url)],
                    )],
                )])]),
            ),
            extension(
                OID_AIA,
                false,
                &der::seq(&[&der::seq(&[
                    &der::oid(OID_CA_ISSUERS),
                    &uri(&self.settings.ca_issuers_url),
                ])]),
            ),
        ];
        sign_certificate(
            &CertSpec {
                subject: &subject,
                spki,
                not_before,
                not_after,
                extensions,
            },
            &self.intermediate.subject_der,
            &self.intermediate.key,
        )
    }

    /// A TLS server certificate chain (leaf, intermediate) and a fresh PKCS#8 key (never
    /// stored) for the gateway's own HTTPS listener.
    pub fn issue_tls_server(&self, names: &[String]) -> Result<(Vec<Vec<u8>>, Vec<u8>), CaError> {
        let pkcs8 = new_p256_pkcs8()?;
        let spki = spki_of(&load_key(&pkcs8)?)?;
        let (ips, dns): (Vec<&String>, Vec<&String>) =
            names.iter().partition(|n| n.parse::<IpAddr>().is_ok());
        let dns: Vec<String> = dns.into_iter().cloned().collect();
        let ips: Vec<IpAddr> = ips.iter().filter_map(|n| n.parse().ok()).collect();
        let t = now();
        let (leaf, _) = self.leaf(
            &spki,
            false,
            &dns,
            &ips,
            ExtendedKeyUsage::Server,
            t - Duration::seconds(BACKDATE_SECONDS),
            t + Duration::days(TLS_SERVER_VALIDITY_DAYS),
        )?;
        Ok((vec![leaf, self.intermediate.cert_der.clone()], pkcs8))
    }
}

/// The fields of a certificate's TBS that the gateway reads.
struct Tbs {
    serial: Vec<u8>,
    issuer: Vec<u8>,
    not_before: i64,
    not_after: i64,
    subject: Vec<u8>,
    spki: Vec<u8>,
    extensions: Vec<(String, Vec<u8>)>,
}

fn parse_time(t: der::Tlv<'_>) -> Option<i64> {
    let s = std::str::from_utf8(t.content).ok()?;
    let full = match t.tag {
        der::UTC_TIME => {
            let yy: i32 = s.get(0..2)?.parse().ok()?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        der::GENERALIZED_TIME => s.to_string(),
        _ => return None,
    };
    chrono::NaiveDateTime::parse_from_str(full.trim_end_matches('Z'), "%Y%m%d%H%M%S")
        .ok()
        .map(|d| d.and_utc().timestamp())
}

impl Tbs {
    fn parse(cert: &[u8]) -> Result<Tbs, CaError> {
        let bad = || CaError::BadCertificate("not a DER X.509 certificate".into());
        let (outer, _) = expect(cert, der::SEQUENCE).ok_or_else(bad)?;
        let (tbs, _) = expect(outer.content, der::SEQUENCE).ok_or_else(bad)?;
        let mut f = children(tbs.content).ok_or_else(bad)?;
        if f.first().is_some_and(|t| t.tag == der::context(0, true)) {
            f.remove(0);
        }
        if f.len() < 6 {
            return Err(bad());
        }
        let validity = children(f[3].content).ok_or_else(bad)?;
        let (nb, na) = match validity.as_slice() {
            [a, b] => (
                parse_time(*a).ok_or_else(bad)?,
                parse_time(*b).ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        };
        let mut extensions = Vec::new();
        if let Some(exts) = f.iter().find(|t| t.tag == der::context(3, true)) {
            let (seq, _) = expect(exts.content, der::SEQUENCE).ok_or_else(bad)?;
            for ext in children(seq.content).ok_or_else(bad)? {
                let parts = children(ext.content).ok_or_else(bad)?;
                let id = parts
                    .first()
                    .map(|t| oid_string(t.content))
                    .unwrap_or_default();
                let value = parts.last().map(|t| t.content.to_vec()).unwrap_or_default();
                extensions.push((id, value));
            }
        }
        Ok(Tbs {
            serial: f[0].content.to_vec(),
            issuer: f[2].raw.to_vec(),
            not_before: nb,
            not_after: na,
            subject: f[4].raw.to_vec(),
            spki: f[5].raw.to_vec(),
            extensions,
        })
    }
}

/// Parses a DER CSR, verifies its self-signature, refuses a CA:true basicConstraints request,
/// and returns its names and key.
pub fn parse_csr(der: &[u8]) -> Result<Csr, CaError> {
    csr::parse(der)
}

/// Reads serial, key, names and validity from a DER certificate.
pub fn certificate_info(der: &[u8]) -> Result<CertificateInfo, CaError> {
    let tbs = Tbs::parse(der)?;
    let (mut dns_names, mut ip_addrs) = (Vec::new(), Vec::new());
    if let Some((_, value)) = tbs.extensions.iter().find(|(id, _)| id == csr::OID_SAN) {
        let (seq, _) = expect(value, der::SEQUENCE)
            .ok_or_else(|| CaError::BadCertificate("bad subjectAltName".into()))?;
        (dns_names, ip_addrs) = csr::general_names(seq.content)
            .ok_or_else(|| CaError::BadCertificate("bad subjectAltName".into()))?;
    }
    Ok(CertificateInfo {
        serial_hex: hex(&tbs.serial),
        spki_der: tbs.spki,
        dns_names,
        ip_addrs,
        not_before: tbs.not_before,
        not_after: tbs.not_after,
        issuer_der: tbs.issuer,
    })
}

#[cfg(test)]
mod tests;
