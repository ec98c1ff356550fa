//! Keys the gateway generates for callers that cannot make their own (`ca::keys`): the key, a
//! CSR for it (so that every issuer, plugins included, gets the request it always gets), and
//! the PEM or PKCS#12 the key leaves in. The key is never stored or logged.

use std::net::IpAddr;

use http::StatusCode;
use serde_json::Value;

use super::ApiError;
use crate::ca::keys::{KeyType, PrivateKey};
use crate::ca::CaError;
use crate::reply::Reply;
use crate::store::Certificate;

/// A key failure as the admin API answers it: the caller's own mistakes (a common name or a
/// name that cannot go in a certificate) are 400, the rest 500.
fn key_error(e: CaError) -> ApiError {
    match e {
        CaError::BadCsr(detail) => ApiError::bad_request(detail),
        other => ApiError::internal(other.to_string()),
    }
}

/// A fresh key of `key_type` (`p256`, `p384`, `rsa2048`, `rsa3072`).
pub fn generate_key(key_type: &str) -> Result<PrivateKey, ApiError> {
    let key_type = KeyType::from_admin_name(key_type).ok_or_else(|| {
        ApiError::bad_request(format!(
            "key_type {key_type:?} is not one of {}",
            KeyType::ADMIN_NAMES.join(", ")
        ))
    })?;
    PrivateKey::generate(key_type).map_err(key_error)
}

/// A key of `key_type` and a CSR (DER) for it naming `common_name`, `dns_names` and
/// `ip_addrs`.
pub fn key_and_csr(
    key_type: &str,
    common_name: Option<&str>,
    dns_names: &[String],
    ip_addrs: &[IpAddr],
) -> Result<(PrivateKey, Vec<u8>), ApiError> {
    if dns_names.is_empty() && ip_addrs.is_empty() {
        return Err(ApiError::bad_request(
            "name at least one DNS name (dns_names) or IP address (ip_addresses)",
        ));
    }
    let key = generate_key(key_type)?;
    let cn = common_name.or(dns_names.first().map(String::as_str));
    let der = key.csr(cn, dns_names, ip_addrs).map_err(key_error)?;
    Ok((key, der))
}

/// A P-256 key from its PKCS#8 DER (the built-in CA's fresh identity keys).
pub fn key_from_pkcs8(der: &[u8]) -> Result<PrivateKey, ApiError> {
    PrivateKey::from_pkcs8(KeyType::P256, der.to_vec()).map_err(key_error)
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
        .map_err(key_error)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_names_what_was_asked_and_verifies() {
        let (key, der) = key_and_csr(
            "p256",
            None,
            &["device.example".into()],
            &["10.0.0.7".parse().unwrap()],
        )
        .unwrap();
        let csr = crate::ca::parse_csr(&der).unwrap();
        assert_eq!(csr.common_name.as_deref(), Some("device.example"));
        assert_eq!(csr.dns_names, vec!["device.example"]);
        assert_eq!(csr.ip_addrs, vec!["10.0.0.7".parse::<IpAddr>().unwrap()]);
        let openssl_key = openssl::pkey::PKey::private_key_from_pkcs8(key.pkcs8_der()).unwrap();
        assert_eq!(csr.spki_der, openssl_key.public_key_to_der().unwrap());
        assert!(key.pkcs8_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn refuses_unknown_key_types_and_nameless_requests() {
        assert_eq!(
            generate_key("dsa1024").unwrap_err().status,
            http::StatusCode::BAD_REQUEST
        );
        assert!(key_and_csr("p256", Some("x"), &[], &[]).is_err());
        let rsa = generate_key("rsa2048").unwrap();
        let openssl_key = openssl::pkey::PKey::private_key_from_pkcs8(rsa.pkcs8_der()).unwrap();
        assert_eq!(openssl_key.rsa().unwrap().size(), 256);
    }
}
