//! The CA hierarchy on disk: generated on first start (P-256 root, 10 years; P-256 issuing
//! intermediate, 5 years, pathLen 0), loaded and cross-checked on every later start.

use std::fs;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::decode::{self, parse_certificate, parse_spki};
use super::issue::{self, CertSpec, CLOCK_SKEW_SECS};
use super::keystore::{self, Material, SecretBytes};
use super::{der, oids, signature, Ca, CaError, CaSettings, KeySecret};

pub const ROOT_CERT: &str = "root.pem";
pub const ROOT_KEY: &str = "root.key.enc";
pub const INTERMEDIATE_CERT: &str = "intermediate.pem";
pub const INTERMEDIATE_KEY: &str = "intermediate.key.enc";

const DAY: i64 = 86_400;
const ROOT_VALIDITY_SECS: i64 = 3_652 * DAY;
const INTERMEDIATE_VALIDITY_SECS: i64 = 1_826 * DAY;

fn store_err(msg: impl Into<String>) -> CaError {
    CaError::KeyStore(msg.into())
}

/// See [`Ca::load_or_create`].
pub fn load_or_create(
    dir: &Path,
    secret: &KeySecret,
    settings: &CaSettings,
) -> Result<Ca, CaError> {
    let rng = SystemRandom::new();
    let files = [ROOT_CERT, ROOT_KEY, INTERMEDIATE_CERT, INTERMEDIATE_KEY].map(|f| dir.join(f));
    let mut present = Vec::new();
    for f in &files {
        let exists = f.try_exists().map_err(|source| CaError::Io {
            action: format!("look for {}", f.display()),
            source,
        })?;
        if exists {
            present.push(f.display().to_string());
        }
    }
    match present.len() {
        0 => create(dir, secret, settings, rng),
        4 => load(&files, secret, settings, rng),
        _ => Err(store_err(format!(
            "incomplete CA in {}: only {} exist; restore the missing files or move the directory \
             away to start a new CA",
            dir.display(),
            present.join(", ")
        ))),
    }
}

/// Whether any of the CA's files is in `dir`.
pub fn exists_in(dir: &Path) -> bool {
    [ROOT_CERT, ROOT_KEY, INTERMEDIATE_CERT, INTERMEDIATE_KEY]
        .iter()
        .any(|f| dir.join(f).exists())
}

fn generate_key(rng: &SystemRandom) -> Result<(SecretBytes, EcdsaKeyPair), CaError> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng)
        .map_err(|_| CaError::Signing("P-256 key generation failed".into()))?;
    let pair = key_pair(pkcs8.as_ref(), rng)?;
    Ok((SecretBytes::new(pkcs8.as_ref().to_vec()), pair))
}

fn key_pair(pkcs8: &[u8], rng: &SystemRandom) -> Result<EcdsaKeyPair, CaError> {
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, rng)
        .map_err(|e| store_err(format!("CA key is not a P-256 PKCS#8 key: {e}")))
}

fn create(
    dir: &Path,
    secret: &KeySecret,
    settings: &CaSettings,
    rng: SystemRandom,
) -> Result<Ca, CaError> {
    keystore::create_private_dir(dir)?;
    let material = keystore::resolve(secret, &rng)?;
    let now = chrono::Utc::now().timestamp();
    let org = Some(settings.organization.as_str());

    let (root_pkcs8, root_key) = generate_key(&rng)?;
    let root_ski = issue::key_identifier(root_key.public_key().as_ref());
    let root_name = der::name(org, Some(&settings.root_cn));
    let root = issue::sign(
        &CertSpec {
            issuer: &root_name,
            subject: &root_name,
            spki_der: &der::p256_spki(root_key.public_key().as_ref()),
            not_before: now - CLOCK_SKEW_SECS,
            not_after: now + ROOT_VALIDITY_SECS,
            extensions: issue::ca_extensions(None, &root_ski, None),
        },
        &root_key,
        &rng,
    )?;

    let (inter_pkcs8, inter_key) = generate_key(&rng)?;
    let inter_ski = issue::key_identifier(inter_key.public_key().as_ref());
    let inter = issue::sign(
        &CertSpec {
            issuer: &root_name,
            subject: &der::name(org, Some(&settings.intermediate_cn)),
            spki_der: &der::p256_spki(inter_key.public_key().as_ref()),
            not_before: now - CLOCK_SKEW_SECS,
            not_after: now + INTERMEDIATE_VALIDITY_SECS,
            extensions: issue::ca_extensions(Some(0), &inter_ski, Some(&root_ski)),
        },
        &root_key,
        &rng,
    )?;

    // Keys first: a crash before the certificates are written leaves an incomplete directory,
    // which the next start refuses instead of minting a second CA over it.
    let sealed_root = keystore::seal(&material, root_pkcs8.as_slice(), &rng)?;
    let sealed_inter = keystore::seal(&material, inter_pkcs8.as_slice(), &rng)?;
    keystore::write_atomic(&dir.join(ROOT_KEY), &sealed_root, 0o600)?;
    keystore::write_atomic(&dir.join(INTERMEDIATE_KEY), &sealed_inter, 0o600)?;
    keystore::write_atomic(
        &dir.join(INTERMEDIATE_CERT),
        der::pem("CERTIFICATE", &inter.der).as_bytes(),
        0o644,
    )?;
    keystore::write_atomic(
        &dir.join(ROOT_CERT),
        der::pem("CERTIFICATE", &root.der).as_bytes(),
        0o644,
    )?;
    tracing::info!(dir = %dir.display(), root_serial = %root.serial_hex, "created CA");
    assemble(root.der, inter.der, inter_key, settings, rng)
}

fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    fs::read(path).map_err(|source| CaError::Io {
        action: format!("read {}", path.display()),
        source,
    })
}

fn read_pem_cert(path: &Path) -> Result<Vec<u8>, CaError> {
    let pem = read(path)?;
    let first = CertificateDer::pem_slice_iter(&pem).next();
    match first {
        Some(Ok(der)) => Ok(der.as_ref().to_vec()),
        _ => Err(store_err(format!(
            "{} holds no PEM certificate",
            path.display()
        ))),
    }
}

/// Decrypts one key file and checks it belongs to `cert_der`.
fn open_key(
    path: &Path,
    material: &Material,
    cert_der: &[u8],
    rng: &SystemRandom,
) -> Result<EcdsaKeyPair, CaError> {
    let what = path.display().to_string();
    let pkcs8 = keystore::open(material, &read(path)?, &what)?;
    let pair = key_pair(pkcs8.as_slice(), rng)?;
    let cert = parse_certificate(cert_der).map_err(store_err)?;
    let spki = parse_spki(&cert.spki).map_err(store_err)?;
    if spki.key.as_ref() != pair.public_key().as_ref() {
        return Err(store_err(format!("{what} does not match its certificate")));
    }
    Ok(pair)
}

fn load(
    files: &[PathBuf; 4],
    secret: &KeySecret,
    settings: &CaSettings,
    rng: SystemRandom,
) -> Result<Ca, CaError> {
    let [root_cert, root_key, inter_cert, inter_key] = files;
    let material = keystore::resolve(secret, &rng)?;
    let root_der = read_pem_cert(root_cert)?;
    let inter_der = read_pem_cert(inter_cert)?;
    // The root key is only needed to mint the intermediate; decrypting it here proves the secret
    // and the file are still good while the operator is watching, not years later.
    let _root_key = open_key(root_key, &material, &root_der, &rng)?;
    let signer = open_key(inter_key, &material, &inter_der, &rng)?;
    assemble(root_der, inter_der, signer, settings, rng)
}

/// Checks the chain (root self-signed, intermediate signed by root) and builds the [`Ca`].
fn assemble(
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    signer: EcdsaKeyPair,
    settings: &CaSettings,
    rng: SystemRandom,
) -> Result<Ca, CaError> {
    let root = parse_certificate(&root_der).map_err(store_err)?;
    let inter = parse_certificate(&intermediate_der).map_err(store_err)?;
    let root_spki = parse_spki(&root.spki).map_err(store_err)?;
    signature::verify(
        &root_spki,
        &root.signature_algorithm,
        &root.tbs,
        &root.signature,
    )
    .map_err(|e| store_err(format!("root certificate: {e}")))?;
    signature::verify(
        &root_spki,
        &inter.signature_algorithm,
        &inter.tbs,
        &inter.signature,
    )
    .map_err(|e| store_err(format!("intermediate is not signed by the root: {e}")))?;
    let inter_spki = parse_spki(&inter.spki).map_err(store_err)?;
    // AKI in leaves must equal the intermediate's SKI byte for byte (RFC 5280 §4.2.1.1).
    let key_id = match inter.extension(&oids::SUBJECT_KEY_IDENTIFIER) {
        Some(ext) => decode::subject_key_identifier(&ext.value).map_err(store_err)?,
        None => issue::key_identifier(&inter_spki.key),
    };
    let now = chrono::Utc::now().timestamp();
    if inter.not_after - now < 30 * DAY {
        tracing::warn!(
            not_after = inter.not_after,
            "the CA intermediate expires within 30 days"
        );
    }
    Ok(Ca {
        root_der,
        intermediate_subject: inter.subject,
        intermediate_key_id: key_id,
        intermediate_not_after: inter.not_after,
        intermediate_der,
        signer,
        rng,
        settings: settings.clone(),
    })
}
