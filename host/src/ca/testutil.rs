//! Test helpers: CSRs made by OpenSSL (an independent implementation), a shared CA, and an
//! OpenSSL chain check.

use std::sync::OnceLock;

use bcder::encode::{self, PrimitiveContent as _};
use bcder::{BitString, Tag};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509NameBuilder, X509Req, X509ReqBuilder, X509StoreContext, X509};

use super::der::{self, Raw};
use super::{oids, Ca, CaSettings, KeySecret};

#[derive(Clone, Copy, Debug)]
pub enum KeyType {
    Rsa(u32),
    P256,
    P384,
    Ed25519,
}

pub fn key(kt: KeyType) -> PKey<Private> {
    use openssl::ec::{EcGroup, EcKey};
    match kt {
        KeyType::Rsa(bits) => PKey::from_rsa(openssl::rsa::Rsa::generate(bits).unwrap()).unwrap(),
        KeyType::P256 | KeyType::P384 => {
            let nid = if matches!(kt, KeyType::P256) {
                Nid::X9_62_PRIME256V1
            } else {
                Nid::SECP384R1
            };
            let group = EcGroup::from_curve_name(nid).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }
        KeyType::Ed25519 => PKey::generate_ed25519().unwrap(),
    }
}

/// A CSR signed by a fresh key of type `kt`.
pub fn csr_with(kt: KeyType, cn: Option<&str>, dns: &[&str], ips: &[&str], ca: bool) -> Vec<u8> {
    csr_for_key(&key(kt), kt, cn, dns, ips, ca)
}

pub fn csr_for_key(
    key: &PKey<Private>,
    kt: KeyType,
    cn: Option<&str>,
    dns: &[&str],
    ips: &[&str],
    ca: bool,
) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    if let Some(cn) = cn {
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    }
    b.set_subject_name(&name.build()).unwrap();
    b.set_pubkey(key).unwrap();
    let mut exts = Stack::new().unwrap();
    if !dns.is_empty() || !ips.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for d in dns {
            san.dns(d);
        }
        for ip in ips {
            san.ip(ip);
        }
        exts.push(san.build(&b.x509v3_context(None)).unwrap())
            .unwrap();
    }
    if ca {
        exts.push(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    }
    if !exts.is_empty() {
        b.add_extensions(&exts).unwrap();
    }
    let md = match kt {
        KeyType::Ed25519 => MessageDigest::null(),
        KeyType::P384 => MessageDigest::sha384(),
        _ => MessageDigest::sha256(),
    };
    b.sign(key, md).unwrap();
    b.build().to_der().unwrap()
}

pub fn csr_der(kt: KeyType, cn: Option<&str>, dns: &[&str]) -> Vec<u8> {
    csr_with(kt, cn, dns, &[], false)
}

/// An RSA-2048 CSR for "pss.example" signed with RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32) by
/// OpenSSL; the AlgorithmIdentifier is written here (RFC 4055 §3.1) since the openssl crate
/// cannot sign requests with PSS. OpenSSL then verifies the result, proving the encoding.
pub fn rsa_pss_csr_der() -> Vec<u8> {
    use openssl::rsa::Padding;
    use openssl::sign::{RsaPssSaltlen, Signer};

    let key = key(KeyType::Rsa(2048));
    let plain = csr_for_key(&key, KeyType::Rsa(2048), None, &["pss.example"], &[], false);
    let info = super::decode::decode(&plain, |cons| {
        cons.take_sequence(|cons| {
            let info = cons.capture_one()?;
            cons.skip_all()?;
            Ok(info)
        })
    })
    .unwrap();
    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
    signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    signer
        .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
        .unwrap();
    signer.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
    signer.update(info.as_slice()).unwrap();
    let sig = signer.sign_to_vec().unwrap();

    let sha256 = || encode::sequence((oids::SHA256.encode(), ().encode()));
    let params = encode::sequence((
        encode::Constructed::new(Tag::CTX_0, sha256()),
        encode::Constructed::new(
            Tag::CTX_1,
            encode::sequence((oids::MGF1.encode(), sha256())),
        ),
        encode::Constructed::new(Tag::CTX_2, 32u8.encode()),
    ));
    let alg = der::to_der(encode::sequence((oids::RSASSA_PSS.encode(), params)));
    let csr = der::to_der(encode::sequence((
        Raw(info.as_slice()),
        Raw(&alg),
        BitString::encode_slice(sig.as_slice(), 0),
    )));
    let req = X509Req::from_der(&csr).unwrap();
    assert!(req.verify(&key).unwrap(), "OpenSSL rejects the PSS CSR");
    csr
}

pub fn test_settings() -> CaSettings {
    CaSettings {
        root_cn: "acmegate Test Root CA".into(),
        intermediate_cn: "acmegate Test Issuing CA".into(),
        organization: "acmegate tests".into(),
        crl_url: "http://ca.test/crl".into(),
        ca_issuers_url: "http://ca.test/intermediate.der".into(),
    }
}

/// One CA for the issuance tests. Its directory is deleted right after loading: issuing needs
/// no files, which this also demonstrates.
pub fn shared_ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let secret = KeySecret::File(dir.path().join("secret.key"));
        Ca::load_or_create(&dir.path().join("ca"), &secret, &test_settings()).unwrap()
    })
}

/// Verifies `leaf` against the CA's root with its intermediate as the untrusted chain, with
/// OpenSSL's X509StoreContext. Returns OpenSSL's verdict text on failure.
pub fn openssl_verify(ca: &Ca, leaf: &[u8]) -> Result<(), String> {
    let mut store = X509StoreBuilder::new().unwrap();
    store
        .add_cert(X509::from_der(&ca.root_der()).unwrap())
        .unwrap();
    let store = store.build();
    let mut chain = Stack::new().unwrap();
    chain
        .push(X509::from_der(&ca.intermediate_der()).unwrap())
        .unwrap();
    let leaf = X509::from_der(leaf).map_err(|e| e.to_string())?;
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, &leaf, &chain, |c| {
        Ok(if c.verify_cert()? {
            Ok(())
        } else {
            Err(c.error().error_string().to_string())
        })
    })
    .unwrap()
}

/// `openssl x509 -text` output, for extension checks.
pub fn text(der: &[u8]) -> String {
    String::from_utf8(X509::from_der(der).unwrap().to_text().unwrap()).unwrap()
}

/// Verifies a server `leaf` for `name` with rustls' WebPKI verifier (rustls-webpki: strict DER,
/// exact AlgorithmIdentifier bytes, EKU serverAuth, name constraints).
pub fn webpki_verify_server(ca: &Ca, leaf: &[u8], name: &str) -> Result<(), String> {
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.root_der()))
        .map_err(|e| e.to_string())?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider,
    )
    .build()
    .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(
            &CertificateDer::from(leaf.to_vec()),
            &[CertificateDer::from(ca.intermediate_der())],
            &server_name,
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
}
