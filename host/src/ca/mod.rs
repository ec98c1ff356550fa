//! The built-in certificate authority: a P-256 root and issuing intermediate generated on first
//! start, keys encrypted at rest, and issuance from verified ACME CSRs (x509-certificate).
//!
//! SKELETON: the public API below is the contract the rest of the gateway codes against.

pub mod profile;

use std::net::IpAddr;
use std::path::Path;

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

/// The CA.
#[derive(Debug)]
pub struct Ca {
    _private: (),
}

impl Ca {
    /// Loads the root and intermediate from `dir`, or generates and stores them (keys encrypted
    /// with `secret`) when absent.
    pub fn load_or_create(
        _dir: &Path,
        _secret: &KeySecret,
        _settings: &CaSettings,
    ) -> Result<Ca, CaError> {
        unimplemented!("ca")
    }

    pub fn root_pem(&self) -> String {
        unimplemented!("ca")
    }
    pub fn root_der(&self) -> Vec<u8> {
        unimplemented!("ca")
    }
    pub fn intermediate_pem(&self) -> String {
        unimplemented!("ca")
    }
    pub fn intermediate_der(&self) -> Vec<u8> {
        unimplemented!("ca")
    }

    /// Issues a leaf for `csr` (already verified by [`parse_csr`]) with exactly the given SANs,
    /// under `profile`. Refuses keys the profile's key policy does not allow.
    pub fn issue(
        &self,
        _csr: &Csr,
        _dns_names: &[String],
        _ip_addrs: &[IpAddr],
        _profile: &Profile,
    ) -> Result<IssuedCertificate, CaError> {
        unimplemented!("ca")
    }

    /// A TLS server certificate chain (leaf, intermediate) and a fresh PKCS#8 key (never
    /// stored) for the gateway's own HTTPS listener.
    pub fn issue_tls_server(&self, _names: &[String]) -> Result<(Vec<Vec<u8>>, Vec<u8>), CaError> {
        unimplemented!("ca")
    }
}

/// Parses a DER CSR, verifies its self-signature, refuses a CA:true basicConstraints request,
/// and returns its names and key.
pub fn parse_csr(_der: &[u8]) -> Result<Csr, CaError> {
    unimplemented!("ca")
}

/// Reads serial, key, names and validity from a DER certificate.
pub fn certificate_info(_der: &[u8]) -> Result<CertificateInfo, CaError> {
    unimplemented!("ca")
}
