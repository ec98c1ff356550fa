//! How a key the gateway generated leaves it (`authority::admin_issuance` and admin API
//! identities make them): PEM in the JSON answer, or a PKCS#12 file. The key is never stored
//! or logged.

use http::StatusCode;
use serde_json::Value;

use super::ApiError;
use crate::ca::keys::{KeyType, PrivateKey};
use crate::reply::Reply;
use crate::store::Certificate;

/// A P-256 key from its PKCS#8 DER (the built-in CA's fresh identity keys).
pub fn key_from_pkcs8(der: &[u8]) -> Result<PrivateKey, ApiError> {
    PrivateKey::from_pkcs8(KeyType::P256, der.to_vec())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// A PKCS#12 holding `key`, the leaf of `chain_pem` and the rest of the chain, protected by
/// `password` (OpenSSL 3's defaults: AES-256-CBC with PBKDF2, HMAC-SHA256 MAC).
pub fn pkcs12(
    key: &PrivateKey,
    chain_pem: &str,
    friendly_name: &str,
    password: &str,
) -> Result<Vec<u8>, ApiError> {
    key.pkcs12(chain_pem, friendly_name, password)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// How a generated key leaves the gateway.
#[derive(Debug)]
pub enum Delivery {
    /// JSON with `private_key_pem` beside the certificate's fields.
    Pem,
    /// A PKCS#12 file (binary body) protected by this password.
    Pkcs12(String),
}

impl Delivery {
    /// From a request's `format` (`pem` by default, or `pkcs12`) and `password`.
    pub fn from_request(format: Option<&str>, password: Option<String>) -> Result<Self, ApiError> {
        match (format.unwrap_or("pem"), password) {
            ("pem", _) => Ok(Self::Pem),
            ("pkcs12", Some(p)) if !p.is_empty() => Ok(Self::Pkcs12(p)),
            ("pkcs12", _) => Err(ApiError::bad_request(
                "a PKCS#12 needs a non-empty password",
            )),
            (other, _) => Err(ApiError::bad_request(format!(
                "format {other:?} is not pem or pkcs12"
            ))),
        }
    }

    /// The 201 answer carrying `cert` (described by `view`) and its `key`.
    pub fn reply(
        self,
        cert: &Certificate,
        mut view: Value,
        key: &PrivateKey,
    ) -> Result<Reply, ApiError> {
        match self {
            Self::Pem => {
                view["private_key_pem"] = Value::from(key.pkcs8_pem());
                Ok(Reply::json(StatusCode::CREATED, &view))
            }
            Self::Pkcs12(password) => {
                let p12 = pkcs12(key, &cert.chain_pem, &cert.subject, &password)?;
                Ok(
                    Reply::bytes(StatusCode::CREATED, "application/x-pkcs12", p12)
                        .header("x-acmegate-serial", cert.serial.clone())
                        .header(
                            "content-disposition",
                            format!("attachment; filename=\"{}.p12\"", cert.serial),
                        ),
                )
            }
        }
    }
}
