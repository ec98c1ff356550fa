//! CA private keys at rest: AES-256-GCM under a key derived from the operator's secret
//! (PBKDF2 for a passphrase, HKDF for a random key file). Plaintext keys never touch disk.

use std::io::Write;
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};

use super::{CaError, KeySecret};

/// File format marker and version.
const MAGIC: &[u8; 8] = b"AGKEY\x00\x01\x00";
const KDF_PBKDF2: u8 = 1;
const KDF_HKDF: u8 = 2;
/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256 is 600k; keys are decrypted once per start, so
/// the cost is paid rarely.
const PBKDF2_ITERATIONS: u32 = 600_000;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
/// Size of a generated key file.
const KEY_FILE_LEN: usize = 32;

fn random(buf: &mut [u8]) -> Result<(), CaError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| CaError::KeyStore("operating system random generator failed".into()))
}

fn io(action: String) -> impl FnOnce(std::io::Error) -> CaError {
    move |source| CaError::Io { action, source }
}

/// Writes `data` to `path` with mode 0600 (created with it, so never briefly readable).
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), CaError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(io(format!("create {}", path.display())))?;
    f.write_all(data)
        .map_err(io(format!("write {}", path.display())))?;
    f.sync_all().map_err(io(format!("sync {}", path.display())))
}

/// The secret's bytes and which KDF suits them; creates a missing key file.
fn secret_bytes(secret: &KeySecret) -> Result<(Vec<u8>, u8), CaError> {
    match secret {
        KeySecret::Passphrase(p) => Ok((p.as_bytes().to_vec(), KDF_PBKDF2)),
        KeySecret::File(path) => {
            if !path.exists() {
                let mut key = [0u8; KEY_FILE_LEN];
                random(&mut key)?;
                write_private(path, &key)?;
                tracing::info!(path = %path.display(), "created the CA key-encryption key file");
            }
            let bytes = std::fs::read(path).map_err(io(format!("read {}", path.display())))?;
            if bytes.len() < 16 {
                return Err(CaError::KeyStore(format!(
                    "key file {} is shorter than 16 bytes",
                    path.display()
                )));
            }
            Ok((bytes, KDF_HKDF))
        }
    }
}

fn derive(secret: &[u8], kdf: u8, salt: &[u8]) -> Result<LessSafeKey, CaError> {
    let mut key = [0u8; 32];
    match kdf {
        KDF_PBKDF2 => ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(std::num::NonZeroU32::MIN),
            salt,
            secret,
            &mut key,
        ),
        KDF_HKDF => {
            struct Len32;
            impl ring::hkdf::KeyType for Len32 {
                fn len(&self) -> usize {
                    32
                }
            }
            let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(secret);
            prk.expand(&[b"acmegate ca key"], Len32)
                .and_then(|okm| okm.fill(&mut key))
                .map_err(|_| CaError::KeyStore("key derivation failed".into()))?;
        }
        other => return Err(CaError::KeyStore(format!("unknown key derivation {other}"))),
    }
    let unbound =
        UnboundKey::new(&AES_256_GCM, &key).map_err(|_| CaError::KeyStore("bad AES key".into()))?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `plaintext` (a PKCS#8 key) for `role` and writes it to `path`.
pub fn seal(path: &Path, role: &str, plaintext: &[u8], secret: &KeySecret) -> Result<(), CaError> {
    let (bytes, kdf) = secret_bytes(secret)?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut salt)?;
    random(&mut nonce)?;
    let key = derive(&bytes, kdf, &salt)?;
    let mut header = MAGIC.to_vec();
    header.push(kdf);
    header.extend_from_slice(&salt);
    header.extend_from_slice(&nonce);
    let mut sealed = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        aad(&header, role),
        &mut sealed,
    )
    .map_err(|_| CaError::KeyStore("encryption failed".into()))?;
    header.extend_from_slice(&sealed);
    write_private(path, &header)
}

/// The associated data binds the header and the key's role, so files cannot be swapped.
fn aad(header: &[u8], role: &str) -> Aad<Vec<u8>> {
    let mut a = header.to_vec();
    a.extend_from_slice(role.as_bytes());
    Aad::from(a)
}

/// Reads and decrypts the key at `path` for `role`.
pub fn open(path: &Path, role: &str, secret: &KeySecret) -> Result<Vec<u8>, CaError> {
    let data = std::fs::read(path).map_err(io(format!("read {}", path.display())))?;
    let header_len = MAGIC.len() + 1 + SALT_LEN + NONCE_LEN;
    if data.len() <= header_len || &data[..MAGIC.len()] != MAGIC {
        return Err(CaError::KeyStore(format!(
            "{} is not an acmegate encrypted key",
            path.display()
        )));
    }
    let kdf = data[MAGIC.len()];
    let salt = &data[MAGIC.len() + 1..MAGIC.len() + 1 + SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&data[header_len - NONCE_LEN..header_len]);
    let (bytes, expected_kdf) = secret_bytes(secret)?;
    if kdf != expected_kdf {
        return Err(CaError::KeyStore(format!(
            "{} was sealed with a {} but a {} was given",
            path.display(),
            kdf_name(kdf),
            kdf_name(expected_kdf)
        )));
    }
    let key = derive(&bytes, kdf, salt)?;
    let mut buf = data[header_len..].to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            aad(&data[..header_len], role),
            &mut buf,
        )
        .map_err(|_| {
            CaError::KeyStore(format!(
                "cannot decrypt {}: wrong passphrase or key file?",
                path.display()
            ))
        })?;
    Ok(plain.to_vec())
}

fn kdf_name(kdf: u8) -> &'static str {
    match kdf {
        KDF_PBKDF2 => "passphrase",
        KDF_HKDF => "key file",
        _ => "unknown secret",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_wrong_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file_secret = KeySecret::File(dir.path().join("secrets/k"));
        let path = dir.path().join("x.key.enc");
        seal(
            &path,
            "root",
            b"-----BEGIN PRIVATE KEY----- secret",
            &file_secret,
        )
        .unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert!(
            !raw.windows(11).any(|w| w == b"PRIVATE KEY"),
            "ciphertext only"
        );
        assert_eq!(
            open(&path, "root", &file_secret).unwrap(),
            b"-----BEGIN PRIVATE KEY----- secret"
        );
        assert!(
            open(&path, "intermediate", &file_secret).is_err(),
            "role is bound"
        );
        let other = KeySecret::File(dir.path().join("secrets/other"));
        let err = open(&path, "root", &other).unwrap_err().to_string();
        assert!(err.contains("wrong passphrase or key file"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [&path, &dir.path().join("secrets/k")] {
                assert_eq!(
                    std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
        }
    }

    #[test]
    fn passphrase_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.enc");
        let pass = KeySecret::Passphrase("correct horse".into());
        seal(&path, "root", b"k", &pass).unwrap();
        assert_eq!(open(&path, "root", &pass).unwrap(), b"k");
        assert!(open(&path, "root", &KeySecret::Passphrase("wrong".into())).is_err());
    }
}
