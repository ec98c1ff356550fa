//! CA tests, checked independently with OpenSSL.

use super::*;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509Req, X509StoreContext, X509};

fn settings() -> CaSettings {
    CaSettings {
        root_cn: "Test Root".into(),
        intermediate_cn: "Test Issuing".into(),
        organization: "acmegate tests".into(),
        crl_url: "https://gw.test/ca/crl.der".into(),
        ca_issuers_url: "https://gw.test/ca/intermediate.der".into(),
    }
}

fn new_ca() -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let secret = KeySecret::File(dir.path().join("secret.key"));
    let ca = Ca::load_or_create(&dir.path().join("ca"), &secret, &settings()).unwrap();
    (dir, ca)
}

fn ec_key(nid: Nid) -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()).unwrap()
}

fn csr_for(key: &PKey<Private>, cn: Option<&str>, sans: &[&str], ca: bool) -> Vec<u8> {
    let mut b = X509Req::builder().unwrap();
    b.set_pubkey(key).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    if let Some(cn) = cn {
        name.append_entry_by_text("CN", cn).unwrap();
    }
    b.set_subject_name(&name.build()).unwrap();
    let mut exts = Stack::new().unwrap();
    if !sans.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for s in sans {
            if s.parse::<IpAddr>().is_ok() {
                san.ip(s);
            } else {
                san.dns(s);
            }
        }
        exts.push(san.build(&b.x509v3_context(None)).unwrap())
            .unwrap();
    }
    if ca {
        exts.push(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    }
    b.add_extensions(&exts).unwrap();
    let md = if key.id() == openssl::pkey::Id::ED25519 {
        MessageDigest::null()
    } else {
        MessageDigest::sha256()
    };
    b.sign(key, md).unwrap();
    b.build().to_der().unwrap()
}

fn verify_with_openssl(ca: &Ca, leaf_der: &[u8]) -> X509 {
    let leaf = X509::from_der(leaf_der).unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store
        .add_cert(X509::from_der(&ca.root_der()).unwrap())
        .unwrap();
    let store = store.build();
    let mut chain = Stack::new().unwrap();
    chain
        .push(X509::from_der(&ca.intermediate_der()).unwrap())
        .unwrap();
    let mut ctx = X509StoreContext::new().unwrap();
    let ok = ctx
        .init(&store, &leaf, &chain, |c| c.verify_cert())
        .unwrap();
    assert!(ok, "openssl rejects the chain: {}", ctx.error());
    leaf
}

fn text(cert: &X509) -> String {
    let pem = cert.to_pem().unwrap();
    let mut child = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&pem).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn created_once_then_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let secret = KeySecret::Passphrase("pass phrase".into());
    let ca_dir = dir.path().join("ca");
    let first = Ca::load_or_create(&ca_dir, &secret, &settings()).unwrap();
    let second = Ca::load_or_create(&ca_dir, &secret, &settings()).unwrap();
    assert_eq!(first.root_pem(), second.root_pem());
    assert_eq!(first.intermediate_der(), second.intermediate_der());
    let wrong = Ca::load_or_create(&ca_dir, &KeySecret::Passphrase("nope".into()), &settings())
        .unwrap_err();
    assert!(wrong.to_string().contains("wrong passphrase"), "{wrong}");
    for f in ["root.key.enc", "intermediate.key.enc"] {
        let bytes = std::fs::read(ca_dir.join(f)).unwrap();
        assert!(!bytes.windows(11).any(|w| w == b"PRIVATE KEY"));
    }
    // The root is a CA with keyCertSign, and the intermediate chains to it.
    let root = X509::from_der(&first.root_der()).unwrap();
    let t = text(&root);
    assert!(
        t.contains("CA:TRUE") && t.contains("Certificate Sign"),
        "{t}"
    );
    let int = X509::from_der(&first.intermediate_der()).unwrap();
    assert!(int.verify(&root.public_key().unwrap()).unwrap());
    assert!(text(&int).contains("pathlen:0"));
}

#[test]
fn issues_leaves_openssl_accepts() {
    let (_d, ca) = new_ca();
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let csr = parse_csr(&csr_for(
        &key,
        None,
        &["www.example.org", "10.1.2.3"],
        false,
    ))
    .unwrap();
    assert_eq!(csr.dns_names, vec!["www.example.org"]);
    assert_eq!(csr.ip_addrs, vec!["10.1.2.3".parse::<IpAddr>().unwrap()]);
    let mut profile = Profile::default_server();
    profile.validity_hours = 48;
    profile.eku = ExtendedKeyUsage::Both;
    let issued = ca
        .issue(&csr, &csr.dns_names, &csr.ip_addrs, &profile)
        .unwrap();
    assert_eq!(
        issued.not_after - issued.not_before,
        48 * 3600 + BACKDATE_SECONDS
    );
    let leaf = verify_with_openssl(&ca, &issued.leaf_der);
    let t = text(&leaf);
    for want in [
        "DNS:www.example.org",
        "IP Address:10.1.2.3",
        "CA:FALSE",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "Digital Signature",
        "URI:https://gw.test/ca/crl.der",
        "CA Issuers - URI:https://gw.test/ca/intermediate.der",
        "Subject Key Identifier",
        "Authority Key Identifier",
        "Subject: CN = www.example.org",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
    assert!(issued.chain_pem.matches("BEGIN CERTIFICATE").count() == 2);
    let info = certificate_info(&issued.leaf_der).unwrap();
    assert_eq!(info.serial_hex, issued.serial_hex);
    assert_eq!(info.spki_der, csr.spki_der);
    assert_eq!(info.dns_names, vec!["www.example.org"]);
    assert_eq!(info.not_after, issued.not_after);
    let openssl_serial = leaf
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_ascii_lowercase();
    assert_eq!(openssl_serial.trim_start_matches('0'), info.serial_hex);
}

#[test]
fn key_types_and_policy() {
    let (_d, ca) = new_ca();
    let profile = Profile::default_server();
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let keys = [
        rsa,
        ec_key(Nid::SECP384R1),
        PKey::generate_ed25519().unwrap(),
    ];
    for key in &keys {
        let csr = parse_csr(&csr_for(key, Some("k.example"), &["k.example"], false)).unwrap();
        let issued = ca.issue(&csr, &csr.dns_names, &[], &profile).unwrap();
        verify_with_openssl(&ca, &issued.leaf_der);
    }
    let small = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
    assert!(matches!(
        parse_csr(&csr_for(&small, None, &["a.example"], false)),
        Err(CaError::KeyPolicy(_))
    ));
    let mut strict = profile.clone();
    strict.key_policy.ed25519 = false;
    strict.key_policy.ec_curves = vec!["P-256".into()];
    for key in &keys[1..] {
        let csr = parse_csr(&csr_for(key, None, &["a.example"], false)).unwrap();
        assert!(matches!(
            ca.issue(&csr, &csr.dns_names, &[], &strict),
            Err(CaError::KeyPolicy(_))
        ));
    }
}

#[test]
fn refuses_bad_csrs() {
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let mut der = csr_for(&key, None, &["a.example"], false);
    assert!(matches!(
        parse_csr(&csr_for(&key, None, &["a.example"], true)),
        Err(CaError::BadCsr(_))
    ));
    let last = der.len() - 5;
    der[last] ^= 0x01;
    assert!(
        matches!(parse_csr(&der), Err(CaError::BadCsr(_))),
        "tampered signature"
    );
    assert!(matches!(parse_csr(b"garbage"), Err(CaError::BadCsr(_))));
    assert!(matches!(parse_csr(&[]), Err(CaError::BadCsr(_))));
    // A CN counts as a requested name.
    let csr = parse_csr(&csr_for(&key, Some("CN.Example.org"), &[], false)).unwrap();
    assert_eq!(csr.dns_names, vec!["cn.example.org"]);
}

#[test]
fn serials_are_unique_and_positive() {
    let (_d, ca) = new_ca();
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let csr = parse_csr(&csr_for(&key, None, &["s.example"], false)).unwrap();
    let profile = Profile::default_server();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let issued = ca.issue(&csr, &csr.dns_names, &[], &profile).unwrap();
        assert!(
            issued.serial_hex.len() >= 30,
            "at least ~120 bits: {}",
            issued.serial_hex
        );
        assert!(seen.insert(issued.serial_hex));
    }
}

#[test]
fn tls_server_certificate_loads_in_rustls() {
    let (_d, ca) = new_ca();
    let (chain, key) = ca
        .issue_tls_server(&["localhost".into(), "127.0.0.1".into(), "::1".into()])
        .unwrap();
    assert_eq!(chain.len(), 2);
    let leaf = verify_with_openssl(&ca, &chain[0]);
    let t = text(&leaf);
    assert!(
        t.contains("DNS:localhost")
            && t.contains("IP Address:127.0.0.1")
            && t.contains("IP Address:0:0:0:0:0:0:0:1"),
        "{t}"
    );
    let certs = chain
        .into_iter()
        .map(rustls_pki_types::CertificateDer::from)
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.into());
    rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
}
