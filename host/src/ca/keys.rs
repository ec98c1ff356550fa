//! Keys the gateway makes for those that cannot make their own (admin `generate`, admin API
//! identities, the bench's ACME client): a fresh private key of a named type, the CSR it signs
//! for itself, and the PEM and PKCS#12 forms it leaves the gateway in.
//!
//! Pure Rust, so that the binary links no OpenSSL: ring generates and uses every key; the `rsa`
//! crate only generates RSA keys (ring cannot) and hands them over as PKCS#8; p12-keystore
//! writes PKCS#12. The private key lives in `SecretBytes` and is never printed.

use std::net::IpAddr;

use bcder::encode::{self, PrimitiveContent};
use bcder::Tag;
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

use super::der::{self, Raw};
use super::keystore::SecretBytes;
use super::{oids, CaError};

/// Key types the gateway generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    P256,
    P384,
    Rsa2048,
    Rsa3072,
    Ed25519,
}

impl KeyType {
    /// The names the admin API takes (`key_type`); Ed25519 is not among them, since many TLS
    /// stacks still refuse it in certificates.
    pub const ADMIN_NAMES: [&'static str; 4] = ["p256", "p384", "rsa2048", "rsa3072"];

    /// The type the admin API names `name`, if it generates that one.
    pub fn from_admin_name(name: &str) -> Option<Self> {
        match name {
            "p256" => Some(Self::P256),
            "p384" => Some(Self::P384),
            "rsa2048" => Some(Self::Rsa2048),
            "rsa3072" => Some(Self::Rsa3072),
            _ => None,
        }
    }
}

/// How an ECDSA signature is written: the DER `Ecdsa-Sig-Value` of X.509 (RFC 3279 §2.2.3),
/// or the fixed-width `r || s` of JWS (RFC 7518 §3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcdsaEncoding {
    Asn1,
    Fixed,
}

/// A private key, kept as its PKCS#8 document.
pub struct PrivateKey {
    key_type: KeyType,
    pkcs8: SecretBytes,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("key_type", &self.key_type)
            .field("pkcs8", &self.pkcs8)
            .finish()
    }
}

fn failed(what: &'static str) -> impl Fn(String) -> CaError {
    move |e| CaError::Keys(format!("failed to {what}: {e}"))
}

impl PrivateKey {
    /// A fresh key of `key_type` from the operating system's randomness.
    pub fn generate(key_type: KeyType) -> Result<Self, CaError> {
        let rng = SystemRandom::new();
        let generate = failed("generate a key");
        let pkcs8 = match key_type {
            KeyType::P256 => {
                EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|e| generate(e.to_string()))?
                    .as_ref()
                    .to_vec()
            }
            KeyType::P384 => {
                EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                    .map_err(|e| generate(e.to_string()))?
                    .as_ref()
                    .to_vec()
            }
            KeyType::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|e| generate(e.to_string()))?
                .as_ref()
                .to_vec(),
            KeyType::Rsa2048 => rsa_pkcs8(2048)?,
            KeyType::Rsa3072 => rsa_pkcs8(3072)?,
        };
        Self::from_pkcs8(key_type, pkcs8)
    }

    /// A key of `key_type` from its PKCS#8 DER, checked by loading it.
    pub fn from_pkcs8(key_type: KeyType, pkcs8: Vec<u8>) -> Result<Self, CaError> {
        let key = Self {
            key_type,
            pkcs8: SecretBytes::new(pkcs8),
        };
        key.signer(EcdsaEncoding::Asn1)?;
        Ok(key)
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        self.pkcs8.as_slice()
    }

    /// The key as PKCS#8 PEM (`BEGIN PRIVATE KEY`, RFC 7468 §10).
    pub fn pkcs8_pem(&self) -> String {
        der::pem("PRIVATE KEY", self.pkcs8.as_slice())
    }

    /// A signer with this key; ECDSA signatures in `encoding`.
    pub fn signer(&self, encoding: EcdsaEncoding) -> Result<Signer, CaError> {
        let rng = SystemRandom::new();
        let der = self.pkcs8.as_slice();
        let load = |e: ring::error::KeyRejected| failed("load the key")(e.to_string());
        let ecdsa = |asn1, fixed| {
            let alg = match encoding {
                EcdsaEncoding::Asn1 => asn1,
                EcdsaEncoding::Fixed => fixed,
            };
            EcdsaKeyPair::from_pkcs8(alg, der, &rng).map(SignerKey::Ecdsa)
        };
        let key = match self.key_type {
            KeyType::P256 => ecdsa(
                &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            ),
            KeyType::P384 => ecdsa(
                &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
                &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            ),
            KeyType::Rsa2048 | KeyType::Rsa3072 => RsaKeyPair::from_pkcs8(der).map(SignerKey::Rsa),
            KeyType::Ed25519 => {
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map(SignerKey::Ed25519)
            }
        }
        .map_err(load)?;
        Ok(Signer {
            key_type: self.key_type,
            key,
            rng,
        })
    }

    /// A CSR (RFC 2986) signed by this key, asking for `common_name` (when given) and the
    /// names in a subjectAltName extension.
    pub fn csr(
        &self,
        common_name: Option<&str>,
        dns_names: &[String],
        ip_addrs: &[IpAddr],
    ) -> Result<Vec<u8>, CaError> {
        // X.520 ub-common-name: 64 characters.
        if let Some(cn) = common_name {
            if cn.is_empty() || cn.chars().count() > 64 {
                return Err(CaError::BadCsr(format!(
                    "common name {cn:?} refused: it must have 1 to 64 characters"
                )));
            }
        }
        if let Some(bad) = dns_names.iter().find(|n| !n.is_ascii()) {
            // dNSName is an IA5String (RFC 5280 §4.2.1.6); IDNs go in their A-label form.
            return Err(CaError::BadCsr(format!(
                "names refused: {bad:?} is not ASCII (write an IDN as its xn-- form)"
            )));
        }
        let signer = self.signer(EcdsaEncoding::Asn1)?;
        let extensions = der::to_der(encode::sequence(Raw(&der::extension(
            oids::SUBJECT_ALT_NAME,
            false,
            &der::subject_alt_name(dns_names, ip_addrs),
        ))));
        // attributes [0] IMPLICIT SET OF { extensionRequest (PKCS #9) SET { Extensions } }.
        let attributes = encode::Constructed::new(
            Tag::CTX_0,
            encode::sequence((
                oids::EXTENSION_REQUEST.encode(),
                encode::set(Raw(&extensions)),
            )),
        );
        let info = der::to_der(encode::sequence((
            0u8.encode(), // version v1
            Raw(&der::name(None, common_name)),
            Raw(&signer.spki()),
            attributes,
        )));
        let signature = signer.sign(&info)?;
        Ok(der::certificate(
            &info,
            &signer.x509_algorithm(),
            &signature,
        ))
    }

    /// A PKCS#12 (RFC 7292) holding this key, the leaf of `chain_pem` and the rest of the
    /// chain, protected by `password` as OpenSSL 3 does by default: PBES2 (PBKDF2 with
    /// HMAC-SHA256, AES-256-CBC) for the key and the certificates, an HMAC-SHA256 MAC over all.
    pub fn pkcs12(
        &self,
        chain_pem: &str,
        friendly_name: &str,
        password: &str,
    ) -> Result<Vec<u8>, CaError> {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKeyChain};
        let p12 = failed("build the PKCS#12");
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .map(|c| {
                let c = c.map_err(|e| p12(format!("the chain is not PEM: {e}")))?;
                Certificate::from_der(&c).map_err(|e| p12(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = chain
            .first()
            .ok_or_else(|| p12("the issued chain is empty".into()))?;
        // The key and its certificate are paired by localKeyId (RFC 7292 §4.2, PKCS #9): the
        // leaf's SHA-256, unique per certificate.
        let key_id = ring::digest::digest(&ring::digest::SHA256, leaf.as_der());
        let key = p12_keystore::PrivateKey::from_der(self.pkcs8.as_slice())
            .map_err(|e| p12(e.to_string()))?;
        let mut store = KeyStore::new();
        store.add_entry(
            friendly_name,
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                key_id.as_ref().to_vec(),
                key,
                chain,
            )),
        );
        store
            .writer(password)
            .write()
            .map_err(|e| p12(e.to_string()))
    }
}

/// An RSA key of `bits` as PKCS#8 DER.
fn rsa_pkcs8(bits: usize) -> Result<Vec<u8>, CaError> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let generate = failed("generate an RSA key");
    let key =
        rsa::PrivateKey::new(&mut rand::rngs::SysRng, bits).map_err(|e| generate(e.to_string()))?;
    let der = key.to_pkcs8_der().map_err(|e| generate(e.to_string()))?;
    Ok(der.as_bytes().to_vec())
}

/// A loaded key that signs: ECDSA P-256/SHA-256 and P-384/SHA-384, RSA PKCS#1 v1.5 with
/// SHA-256, Ed25519.
pub struct Signer {
    key_type: KeyType,
    key: SignerKey,
    rng: SystemRandom,
}

enum SignerKey {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        let signing = |_| CaError::Signing(format!("{:?} signing failed", self.key_type));
        match &self.key {
            SignerKey::Ecdsa(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(signing),
            SignerKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&sig::RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
                    .map_err(signing)?;
                Ok(signature)
            }
            SignerKey::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// The public key as ring holds it: the uncompressed EC point, the DER RSAPublicKey, or the
    /// 32 Ed25519 octets.
    pub fn public_key(&self) -> &[u8] {
        match &self.key {
            SignerKey::Ecdsa(pair) => pair.public_key().as_ref(),
            SignerKey::Rsa(pair) => pair.public_key().as_ref(),
            SignerKey::Ed25519(pair) => pair.public_key().as_ref(),
        }
    }

    /// An RSA key's modulus and public exponent, big-endian without leading zeros (a JWK's
    /// `n` and `e`, RFC 7518 §6.3.1).
    pub fn rsa_components(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        match &self.key {
            SignerKey::Rsa(pair) => {
                let c = sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                Some((c.n, c.e))
            }
            _ => None,
        }
    }

    /// The SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    pub fn spki(&self) -> Vec<u8> {
        let key = self.public_key();
        match self.key_type {
            KeyType::P256 => der::ec_spki(oids::SECP256R1, key),
            KeyType::P384 => der::ec_spki(oids::SECP384R1, key),
            // RFC 3279 §2.3.1: rsaEncryption with NULL parameters.
            KeyType::Rsa2048 | KeyType::Rsa3072 => der::to_der(encode::sequence((
                encode::sequence((oids::RSA_ENCRYPTION.encode(), ().encode())),
                bcder::BitString::encode_slice(key, 0),
            ))),
            // RFC 8410 §3: parameters absent.
            KeyType::Ed25519 => der::to_der(encode::sequence((
                encode::sequence(oids::ED25519.encode()),
                bcder::BitString::encode_slice(key, 0),
            ))),
        }
    }

    /// The X.509 AlgorithmIdentifier of this signer's signatures.
    pub fn x509_algorithm(&self) -> Vec<u8> {
        match self.key_type {
            KeyType::P256 => der::ecdsa_with_sha256(),
            // RFC 5758 §3.2: parameters absent.
            KeyType::P384 => der::to_der(encode::sequence(oids::ECDSA_WITH_SHA384.encode())),
            // RFC 4055 §5: NULL parameters.
            KeyType::Rsa2048 | KeyType::Rsa3072 => der::to_der(encode::sequence((
                oids::SHA256_WITH_RSA.encode(),
                ().encode(),
            ))),
            KeyType::Ed25519 => der::to_der(encode::sequence(oids::ED25519.encode())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_signs_a_csr_the_ca_reads_and_verifies() {
        for key_type in [
            KeyType::P256,
            KeyType::P384,
            KeyType::Rsa2048,
            KeyType::Ed25519,
        ] {
            let key = PrivateKey::generate(key_type).unwrap();
            let der = key
                .csr(
                    Some("device.example"),
                    &["device.example".into()],
                    &["10.0.0.7".parse().unwrap()],
                )
                .unwrap();
            let csr = crate::ca::parse_csr(&der).unwrap_or_else(|e| panic!("{key_type:?}: {e}"));
            assert_eq!(csr.common_name.as_deref(), Some("device.example"));
            assert_eq!(csr.dns_names, vec!["device.example"]);
            assert_eq!(csr.ip_addrs, vec!["10.0.0.7".parse::<IpAddr>().unwrap()]);
            let spki = key.signer(EcdsaEncoding::Asn1).unwrap().spki();
            assert_eq!(csr.spki_der, spki, "{key_type:?}");
        }
    }

    #[test]
    fn openssl_reads_the_keys_and_csrs() {
        for key_type in [KeyType::P384, KeyType::Rsa2048] {
            let key = PrivateKey::generate(key_type).unwrap();
            let pem = key.pkcs8_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
            let parsed = openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()).unwrap();
            let der = key.csr(None, &["a.example".into()], &[]).unwrap();
            let req = openssl::x509::X509Req::from_der(&der).unwrap();
            assert!(req.verify(&parsed).unwrap(), "{key_type:?}");
            assert_eq!(
                req.public_key().unwrap().public_key_to_der().unwrap(),
                parsed.public_key_to_der().unwrap()
            );
        }
    }

    /// The PKCS#12 opens in OpenSSL, the consumer most tools use (curl, nginx, Python): the
    /// `openssl pkcs12` command with the password, and the library, which must find the same
    /// key, the leaf and the intermediate. An empty password (`admin-cert issue`'s default)
    /// opens too.
    #[test]
    fn openssl_opens_the_pkcs12_with_its_password() {
        let ca = crate::ca::testutil::shared_ca();
        for (key_type, password) in [(KeyType::P256, "s3cret"), (KeyType::Rsa2048, "")] {
            let key = PrivateKey::generate(key_type).unwrap();
            let csr = key.csr(None, &["p12.example".into()], &[]).unwrap();
            let csr = crate::ca::parse_csr(&csr).unwrap();
            let issued = ca
                .issue(
                    &csr,
                    &csr.dns_names,
                    &[],
                    &crate::ca::Profile::default_server(),
                )
                .unwrap();
            let p12 = key
                .pkcs12(&issued.chain_pem, "p12.example", password)
                .unwrap();

            let parsed = openssl::pkcs12::Pkcs12::from_der(&p12)
                .unwrap()
                .parse2(password)
                .unwrap();
            let opened_key = parsed.pkey.unwrap();
            assert_eq!(
                opened_key.private_key_to_pkcs8().unwrap(),
                key.pkcs8_der(),
                "{key_type:?}"
            );
            let leaf = parsed.cert.unwrap();
            assert_eq!(leaf.to_der().unwrap(), issued.leaf_der);
            let cas: Vec<Vec<u8>> = parsed
                .ca
                .into_iter()
                .flatten()
                .map(|c| c.to_der().unwrap())
                .collect();
            assert_eq!(cas, vec![ca.intermediate_der()]);
            assert!(openssl::pkcs12::Pkcs12::from_der(&p12)
                .unwrap()
                .parse2("wrong")
                .is_err());

            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("id.p12");
            std::fs::write(&path, &p12).unwrap();
            let out = std::process::Command::new("openssl")
                .args(["pkcs12", "-info", "-nokeys", "-passin"])
                .arg(format!("pass:{password}"))
                .arg("-in")
                .arg(&path)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{key_type:?}: {stderr}");
            assert_eq!(stdout.matches("BEGIN CERTIFICATE").count(), 2, "{stdout}");
            assert!(
                stderr.contains("PBES2") && stderr.contains("AES-256-CBC"),
                "{stderr}"
            );
            assert!(stderr.contains("MAC: sha256"), "{stderr}");
        }
    }

    #[test]
    fn bad_common_names_and_non_ascii_names_are_refused_by_name() {
        let key = PrivateKey::generate(KeyType::P256).unwrap();
        let long = "a".repeat(65);
        let err = key
            .csr(Some(&long), &["a.example".into()], &[])
            .unwrap_err();
        assert!(err.to_string().contains("common name"), "{err}");
        let err = key.csr(None, &["bücher.example".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("bücher.example"), "{err}");
    }

    #[test]
    fn a_key_of_one_type_is_not_taken_for_another() {
        let p256 = PrivateKey::generate(KeyType::P256).unwrap();
        assert!(PrivateKey::from_pkcs8(KeyType::P384, p256.pkcs8_der().to_vec()).is_err());
        assert!(PrivateKey::from_pkcs8(KeyType::Rsa2048, vec![0x30, 0]).is_err());
        assert!(format!("{p256:?}").contains("redacted"));
    }
}
