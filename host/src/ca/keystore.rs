//! Encryption at rest of the CA's PKCS#8 private keys, and the owner-only file writes they need.
//!
//! File format (version 1), all integers big-endian:
//!
//! ```text
//! magic "AGCAKEY\0" (8) | version 1 (1) | kdf (1) | iterations (4) | salt (16) | nonce (12) |
//! AES-256-GCM ciphertext of the PKCS#8 DER, with its 16-byte tag
//! ```
//!
//! The whole header is the AEAD's associated data, so editing any header field (a lower
//! iteration count, another KDF) fails authentication instead of silently changing the key.
//! `kdf` 1 is PBKDF2-HMAC-SHA256 over a passphrase (NIST SP 800-132; `iterations` as stored);
//! `kdf` 2 is HKDF-SHA256 (RFC 5869) over the bytes of a key file, which are already uniformly
//! random, so stretching buys nothing.

use std::fs;
use std::io::Write as _;
use std::num::NonZeroU32;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, pbkdf2};

use super::{CaError, KeySecret};

const MAGIC: &[u8; 8] = b"AGCAKEY\0";
const VERSION: u8 = 1;
const KDF_PBKDF2_SHA256: u8 = 1;
const KDF_HKDF_SHA256: u8 = 2;
/// OWASP's 2021 floor for PBKDF2-HMAC-SHA256; about a tenth of a second per key on a server.
pub const PBKDF2_ITERATIONS: u32 = 310_000;
/// Refuse absurd stored counts rather than spin for hours on a corrupt header.
const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + 1 + 1 + 4 + SALT_LEN + NONCE_LEN;
const HKDF_INFO: &[u8] = b"acmegate CA key encryption v1";
/// Size of a generated key file.
const KEY_FILE_LEN: usize = 32;
/// Shortest key file accepted: 128 bits of secret.
const KEY_FILE_MIN_LEN: usize = 16;

fn store_err(msg: impl Into<String>) -> CaError {
    CaError::KeyStore(msg.into())
}

fn io_err(action: String) -> impl FnOnce(std::io::Error) -> CaError {
    move |source| CaError::Io { action, source }
}

/// Secret bytes in memory (passphrases, key files, PKCS#8 keys): overwritten on drop, never
/// printed. Best effort: copies made inside libraries are out of reach.
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// The secret, resolved to bytes (a key file is read or created).
#[derive(Debug)]
pub struct Material {
    kdf: u8,
    secret: SecretBytes,
}

/// Resolves `secret`: a passphrase as-is, or the contents of the key file, which is created with
/// 32 random bytes (mode 0600, parents 0700) when absent.
pub fn resolve(secret: &KeySecret, rng: &SystemRandom) -> Result<Material, CaError> {
    match secret {
        KeySecret::Passphrase(p) if p.is_empty() => Err(store_err("the CA passphrase is empty")),
        KeySecret::Passphrase(p) => Ok(Material {
            kdf: KDF_PBKDF2_SHA256,
            secret: SecretBytes::new(p.as_bytes().to_vec()),
        }),
        KeySecret::File(path) => {
            let secret = SecretBytes::new(match fs::read(path) {
                Ok(bytes) => {
                    warn_if_shared(path);
                    bytes
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut fresh = vec![0u8; KEY_FILE_LEN];
                    rng.fill(&mut fresh)
                        .map_err(|_| store_err("no randomness for the key file"))?;
                    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                        create_private_dir(parent)?;
                    }
                    write_new(path, &fresh, 0o600)?;
                    fresh
                }
                Err(e) => return Err(io_err(format!("read CA key file {}", path.display()))(e)),
            });
            if secret.as_slice().len() < KEY_FILE_MIN_LEN {
                return Err(store_err(format!(
                    "CA key file {} holds {} bytes, at least {KEY_FILE_MIN_LEN} are needed",
                    path.display(),
                    secret.as_slice().len()
                )));
            }
            Ok(Material {
                kdf: KDF_HKDF_SHA256,
                secret,
            })
        }
    }
}

/// Logs when an existing key file can be read by group or others (it is used anyway: refusing
/// would turn a permissions slip into an outage).
fn warn_if_shared(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "CA key file is readable by group or others; chmod 600 it");
        }
    }
}

/// Derives the AES-256-GCM key for one file.
/// 32 bytes from the secret for `salt`: PBKDF2 over a passphrase, HKDF over a key file's bytes.
fn derive_bytes(material: &Material, iterations: u32, salt: &[u8]) -> Result<[u8; 32], CaError> {
    let mut key = [0u8; 32];
    match material.kdf {
        KDF_PBKDF2_SHA256 => {
            let rounds = NonZeroU32::new(iterations)
                .filter(|n| n.get() <= MAX_ITERATIONS)
                .ok_or_else(|| store_err(format!("bad PBKDF2 iteration count {iterations}")))?;
            pbkdf2::derive(
                pbkdf2::PBKDF2_HMAC_SHA256,
                rounds,
                salt,
                material.secret.as_slice(),
                &mut key,
            );
        }
        _ => {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(material.secret.as_slice());
            prk.expand(&[HKDF_INFO], &AES_256_GCM)
                .and_then(|okm| okm.fill(&mut key))
                .map_err(|_| store_err("HKDF expansion failed"))?;
        }
    }
    Ok(key)
}

fn derive(material: &Material, iterations: u32, salt: &[u8]) -> Result<LessSafeKey, CaError> {
    let mut key = derive_bytes(material, iterations, salt)?;
    let unbound = UnboundKey::new(&AES_256_GCM, &key);
    key.iter_mut().for_each(|b| *b = 0);
    Ok(LessSafeKey::new(
        unbound.map_err(|_| store_err("AES key setup failed"))?,
    ))
}

/// An HMAC-SHA256 key for one purpose (e.g. `b"acmegate audit v1"`), derived like
/// [`purpose_key`].
pub fn purpose_hmac_key(material: &Material, purpose: &[u8]) -> Result<ring::hmac::Key, CaError> {
    let mut key = derive_bytes(material, PBKDF2_ITERATIONS, purpose)?;
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    key.iter_mut().for_each(|b| *b = 0);
    Ok(hmac)
}

/// A key for one other purpose (e.g. `b"acmegate plugin state v1"`), from the same secret:
/// HKDF with the purpose as salt, or PBKDF2 over the passphrase with it (derived once, so the
/// iteration cost is paid at start-up, not per value).
pub fn purpose_key(material: &Material, purpose: &[u8]) -> Result<LessSafeKey, CaError> {
    derive(material, PBKDF2_ITERATIONS, purpose)
}

/// Encrypts `plaintext` into the file format above.
pub fn seal(material: &Material, plaintext: &[u8], rng: &SystemRandom) -> Result<Vec<u8>, CaError> {
    let iterations = if material.kdf == KDF_PBKDF2_SHA256 {
        PBKDF2_ITERATIONS
    } else {
        0
    };
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut nonce))
        .map_err(|_| store_err("no randomness for key encryption"))?;

    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + AES_256_GCM.tag_len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(material.kdf);
    out.extend_from_slice(&iterations.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let key = derive(material, iterations, &salt)?;
    // Encrypted in place: once sealed, `body` holds only ciphertext and tag.
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&out[..HEADER_LEN]),
        &mut body,
    )
    .map_err(|_| store_err("key encryption failed"))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts a file written by [`seal`]; `what` names it in errors.
pub fn open(material: &Material, sealed: &[u8], what: &str) -> Result<SecretBytes, CaError> {
    if sealed.len() < HEADER_LEN + AES_256_GCM.tag_len() || &sealed[..MAGIC.len()] != MAGIC {
        return Err(store_err(format!(
            "{what} is not an acmegate encrypted key file"
        )));
    }
    let (header, body) = sealed.split_at(HEADER_LEN);
    // The indexes below are within HEADER_LEN, checked above.
    if header[8] != VERSION {
        return Err(store_err(format!(
            "{what}: unknown key file version {}",
            header[8]
        )));
    }
    if header[9] != material.kdf {
        let how = |k: u8| match k {
            KDF_PBKDF2_SHA256 => "a passphrase",
            KDF_HKDF_SHA256 => "a key file",
            _ => "an unknown method",
        };
        return Err(store_err(format!(
            "{what} was encrypted with {}, but {} was configured",
            how(header[9]),
            how(material.kdf)
        )));
    }
    let iterations = u32::from_be_bytes([header[10], header[11], header[12], header[13]]);
    let salt = &header[14..14 + SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&header[14 + SALT_LEN..HEADER_LEN]);
    let key = derive(material, iterations, salt)?;
    let mut buf = SecretBytes::new(body.to_vec());
    let plain_len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(header),
            &mut buf.0,
        )
        .map_err(|_| {
            store_err(format!(
                "cannot decrypt {what}: wrong passphrase or key file? (or the file is damaged)"
            ))
        })?
        .len();
    buf.0.truncate(plain_len);
    Ok(buf)
}

/// Creates `dir` (and parents) with mode 0700 for the new levels.
pub fn create_private_dir(dir: &Path) -> Result<(), CaError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(format!("create directory {}", dir.display())))
}

/// Writes a file that must not exist yet, with `mode`, and syncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let action = || format!("write {}", path.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_err(action()))?;
    // The umask may have narrowed `mode`; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(action()))?;
    f.write_all(bytes).map_err(io_err(action()))?;
    f.sync_all().map_err(io_err(action()))
}

/// Replaces `path` atomically: writes `path.tmp` with `mode`, then renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("remove {}", tmp.display()))(e)),
    }
    write_new(&tmp, bytes, mode)?;
    fs::rename(&tmp, path).map_err(io_err(format!("rename {}", tmp.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_round_trip_and_wrong_passphrase() {
        let rng = SystemRandom::new();
        let m = resolve(&KeySecret::Passphrase("correct horse".into()), &rng).unwrap();
        let sealed = seal(&m, b"secret pkcs8", &rng).unwrap();
        assert_eq!(&sealed[..8], MAGIC);
        assert_eq!(sealed[9], KDF_PBKDF2_SHA256);
        assert_eq!(
            u32::from_be_bytes(sealed[10..14].try_into().unwrap()),
            PBKDF2_ITERATIONS
        );
        assert!(!sealed.windows(12).any(|w| w == b"secret pkcs8"));
        assert_eq!(open(&m, &sealed, "k").unwrap().as_slice(), b"secret pkcs8");

        let wrong = resolve(&KeySecret::Passphrase("battery staple".into()), &rng).unwrap();
        match open(&wrong, &sealed, "k") {
            Err(CaError::KeyStore(msg)) => assert!(msg.contains("wrong passphrase"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let rng = SystemRandom::new();
        let m = resolve(&KeySecret::Passphrase("hunter2".into()), &rng).unwrap();
        let shown = format!("{m:?} {:?}", SecretBytes::new(b"pkcs8".to_vec()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("104, 117"),
            "{shown}"
        );
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn header_is_authenticated() {
        let rng = SystemRandom::new();
        let dir = tempfile::tempdir().unwrap();
        let m = resolve(&KeySecret::File(dir.path().join("k")), &rng).unwrap();
        let sealed = seal(&m, b"data", &rng).unwrap();
        assert_eq!(open(&m, &sealed, "k").unwrap().as_slice(), b"data");
        // Flip a salt bit, a nonce bit, a ciphertext bit: all fail.
        for i in [20, HEADER_LEN - 1, HEADER_LEN + 1] {
            let mut s = sealed.clone();
            s[i] ^= 1;
            assert!(
                matches!(open(&m, &s, "k"), Err(CaError::KeyStore(_))),
                "byte {i}"
            );
        }
        // Raising the iteration count field of a key-file file is also caught.
        let mut s = sealed.clone();
        s[13] ^= 1;
        assert!(open(&m, &s, "k").is_err());
        assert!(open(&m, b"short", "k").is_err());
    }

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let rng = SystemRandom::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/ca.secret");
        let m1 = resolve(&KeySecret::File(path.clone()), &rng).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_FILE_LEN as u64);
        let parent = fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o077, 0);
        let sealed = seal(&m1, b"x", &rng).unwrap();
        let m2 = resolve(&KeySecret::File(path.clone()), &rng).unwrap();
        assert_eq!(open(&m2, &sealed, "k").unwrap().as_slice(), b"x");

        // A passphrase cannot open what a key file sealed, and says why.
        let p = resolve(&KeySecret::Passphrase("p".into()), &rng).unwrap();
        match open(&p, &sealed, "k") {
            Err(CaError::KeyStore(msg)) => assert!(msg.contains("key file"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_key_file_and_empty_passphrase_refused() {
        let rng = SystemRandom::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        fs::write(&path, b"tiny").unwrap();
        assert!(matches!(
            resolve(&KeySecret::File(path), &rng),
            Err(CaError::KeyStore(_))
        ));
        assert!(matches!(
            resolve(&KeySecret::Passphrase(String::new()), &rng),
            Err(CaError::KeyStore(_))
        ));
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(!dir.path().join("f.tmp").exists());
    }
}
