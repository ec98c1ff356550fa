//! Keys the gateway generates for callers that cannot make their own (OpenSSL): the key, a
//! CSR for it (so that every issuer, plugins included, gets the request it always gets), and
//! the PEM or PKCS#12 the key leaves in. The key is never stored or logged.

use std::net::IpAddr;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};

use http::StatusCode;
use serde_json::Value;

use super::ApiError;
use crate::reply::Reply;
use crate::store::Certificate;

fn openssl_failed(what: &str) -> impl Fn(openssl::error::ErrorStack) -> ApiError + '_ {
    move |e| ApiError::internal(format!("failed to {what}: {e}"))
}

/// A fresh key of `key_type` (`p256`, `p384`, `rsa2048`, `rsa3072`).
pub fn generate_key(key_type: &str) -> Result<PKey<Private>, ApiError> {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    let failed = openssl_failed("generate a key");
    let ec = |nid: Nid| -> Result<PKey<Private>, ApiError> {
        let group = EcGroup::from_curve_name(nid).map_err(&failed)?;
        PKey::from_ec_key(EcKey::generate(&group).map_err(&failed)?).map_err(&failed)
    };
    let rsa = |bits: u32| -> Result<PKey<Private>, ApiError> {
        PKey::from_rsa(openssl::rsa::Rsa::generate(bits).map_err(&failed)?).map_err(&failed)
    };
    match key_type {
        "p256" => ec(Nid::X9_62_PRIME256V1),
        "p384" => ec(Nid::SECP384R1),
        "rsa2048" => rsa(2048),
        "rsa3072" => rsa(3072),
        other => Err(ApiError::bad_request(format!(
            "key_type {other:?} is not one of p256, p384, rsa2048, rsa3072"
        ))),
    }
}

/// A key of `key_type` and a CSR (DER) for it naming `common_name`, `dns_names` and
/// `ip_addrs`.
pub fn key_and_csr(
    key_type: &str,
    common_name: Option<&str>,
    dns_names: &[String],
    ip_addrs: &[IpAddr],
) -> Result<(PKey<Private>, Vec<u8>), ApiError> {
    if dns_names.is_empty() && ip_addrs.is_empty() {
        return Err(ApiError::bad_request(
            "name at least one DNS name (dns_names) or IP address (ip_addresses)",
        ));
    }
    let key = generate_key(key_type)?;
    let failed = openssl_failed("build the CSR");
    let mut req = X509ReqBuilder::new().map_err(&failed)?;
    req.set_pubkey(&key).map_err(&failed)?;
    let mut name = X509NameBuilder::new().map_err(&failed)?;
    let cn = common_name.or(dns_names.first().map(String::as_str));
    if let Some(cn) = cn {
        name.append_entry_by_text("CN", cn)
            .map_err(|e| ApiError::bad_request(format!("common name {cn:?} refused: {e}")))?;
    }
    req.set_subject_name(&name.build()).map_err(&failed)?;
    let mut san = SubjectAlternativeName::new();
    for dns in dns_names {
        san.dns(dns);
    }
    for ip in ip_addrs {
        san.ip(&ip.to_string());
    }
    let san = san
        .build(&req.x509v3_context(None))
        .map_err(|e| ApiError::bad_request(format!("names refused: {e}")))?;
    let mut extensions = openssl::stack::Stack::new().map_err(&failed)?;
    extensions.push(san).map_err(&failed)?;
    req.add_extensions(&extensions).map_err(&failed)?;
    req.sign(&key, MessageDigest::sha256()).map_err(&failed)?;
    let der = req.build().to_der().map_err(&failed)?;
    Ok((key, der))
}

/// A key from its PKCS#8 DER (the built-in CA's fresh keys).
pub fn key_from_pkcs8(der: &[u8]) -> Result<PKey<Private>, ApiError> {
    PKey::private_key_from_pkcs8(der).map_err(openssl_failed("read the generated key"))
}

/// The key as PKCS#8 PEM.
pub fn private_pem(key: &PKey<Private>) -> Result<String, ApiError> {
    let pem = key
        .private_key_to_pem_pkcs8()
        .map_err(openssl_failed("encode the key"))?;
    String::from_utf8(pem).map_err(|e| ApiError::internal(format!("key PEM is not text: {e}")))
}

/// A PKCS#12 holding `key`, the leaf of `chain_pem` and the rest of the chain, protected by
/// `password` (OpenSSL 3 defaults: AES-256-CBC with PBKDF2).
pub fn pkcs12(
    key: &PKey<Private>,
    chain_pem: &str,
    friendly_name: &str,
    password: &str,
) -> Result<Vec<u8>, ApiError> {
    let failed = openssl_failed("build the PKCS#12");
    let mut chain = X509::stack_from_pem(chain_pem.as_bytes()).map_err(&failed)?;
    if chain.is_empty() {
        return Err(ApiError::internal("the issued chain is empty"));
    }
    let leaf = chain.remove(0);
    let mut cas = openssl::stack::Stack::new().map_err(&failed)?;
    for ca in chain {
        cas.push(ca).map_err(&failed)?;
    }
    openssl::pkcs12::Pkcs12::builder()
        .name(friendly_name)
        .pkey(key)
        .cert(&leaf)
        .ca(cas)
        .build2(password)
        .and_then(|p12| p12.to_der())
        .map_err(&failed)
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
        key: &PKey<Private>,
    ) -> Result<Reply, ApiError> {
        match self {
            Self::Pem => {
                view["private_key_pem"] = Value::from(private_pem(key)?);
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
        assert_eq!(csr.spki_der, key.public_key_to_der().unwrap());
        assert!(private_pem(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn refuses_unknown_key_types_and_nameless_requests() {
        assert_eq!(
            generate_key("dsa1024").unwrap_err().status,
            http::StatusCode::BAD_REQUEST
        );
        assert!(key_and_csr("p256", Some("x"), &[], &[]).is_err());
        assert!(generate_key("rsa2048").unwrap().rsa().is_ok());
    }
}
