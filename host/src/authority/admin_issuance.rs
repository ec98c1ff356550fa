//! Certificates an operator issues outside any ACME order (the admin API's `issue` and
//! `generate`): from a CSR under a profile, or with a key the gateway generates for a device that
//! cannot make its own (the uPKI `generate` use case). The decisions are the ACME ones where they
//! apply (the profile, the names an order may carry) and the work is the same (the profile's
//! issuer, the store, notices, deployment); the admin front end only decodes and encodes.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::issuance::{IssueError, IssueOutcome, IssueRequest, IssuedChain};
use super::Gateway;
use crate::acme::{Identifier, Problem};
use crate::ca::keys::{KeyType, PrivateKey};
use crate::ca::{CaError, Csr, Profile};
use crate::ids;
use crate::store::{Certificate, DeploymentJob, StoreError};

/// How long an admin issuance waits for an issuer that answers "pending" before giving up:
/// the caller holds an HTTP request open meanwhile.
pub const ISSUE_WAIT: Duration = Duration::from_secs(60);

/// The key type of a generated key when the request names none.
pub const DEFAULT_KEY_TYPE: &str = "p256";

/// Why an admin issuance did not happen, one variant per answer the front end gives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminIssueError {
    /// The request cannot be served as asked: an unknown profile or key type, no names, a
    /// common name or name a certificate cannot carry.
    #[error("{0}")]
    BadRequest(String),
    /// Refused as an ACME order would be (a bad CSR, a name the policy refuses, the issuer's
    /// own refusal), with that problem.
    #[error("{}", .0.detail)]
    Refused(Problem),
    /// The issuer deferred for longer than [`ISSUE_WAIT`].
    #[error("issuer {issuer:?} has not issued within {} s (handle {handle})", ISSUE_WAIT.as_secs())]
    IssuerPending { issuer: String, handle: String },
    /// The issuer failed (unreachable, a fault): the caller may retry.
    #[error("issuer {issuer:?} failed: {detail}")]
    IssuerFailed { issuer: String, detail: String },
    /// Storing the certificate failed.
    #[error("the certificate could not be stored: {0}")]
    Store(StoreError),
    /// The gateway's own fault (an issuer a profile names is not loaded, key generation).
    #[error("{0}")]
    Internal(String),
}

impl From<Problem> for AdminIssueError {
    fn from(p: Problem) -> Self {
        Self::Refused(p)
    }
}

/// What a caller asks of `generate`: the names, and which profile and key type.
#[derive(Debug, Default)]
pub struct GenerateRequest {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addrs: Vec<IpAddr>,
    pub profile: Option<String>,
    /// `p256` ([`DEFAULT_KEY_TYPE`]), `p384`, `rsa2048` or `rsa3072`.
    pub key_type: Option<String>,
}

/// The named profile, or the ACME default one.
pub fn profile(gw: &Gateway, name: Option<&str>) -> Result<Profile, AdminIssueError> {
    let name = name.unwrap_or(&gw.config.acme.default_profile);
    gw.profile(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = gw.profiles.iter().map(|p| p.name.as_str()).collect();
        AdminIssueError::BadRequest(format!("unknown profile {name:?}; known: {known:?}"))
    })
}

/// Issues `csr` (for exactly the names it asks) under the named profile, stores it as issued
/// by `actor`, and hands it to notices and to the deployment targets that cover it.
pub async fn issue_from_csr(
    gw: &Arc<Gateway>,
    csr: Csr,
    profile_name: Option<&str>,
    actor: &str,
) -> Result<Certificate, AdminIssueError> {
    let profile = profile(gw, profile_name)?;
    issue_and_store(gw, csr, &profile, actor, None).await
}

/// Generates a key and a CSR for it as `request` asks, issues it under the profile, stores the
/// certificate, and deploys it with its key (the gateway holds this key, so targets receive it
/// with the chain). The key is returned to the caller and kept nowhere.
pub async fn generate(
    gw: &Arc<Gateway>,
    request: GenerateRequest,
    actor: &str,
) -> Result<(Certificate, PrivateKey), AdminIssueError> {
    let profile = profile(gw, request.profile.as_deref())?;
    let (key, csr_der) = tokio::task::spawn_blocking(move || key_and_csr(&request))
        .await
        .map_err(|e| AdminIssueError::Internal(format!("key generation task failed: {e}")))??;
    let csr = crate::ca::parse_csr(&csr_der).map_err(super::ca_problem)?;
    let cert = issue_and_store(gw, csr, &profile, actor, Some(key.pkcs8_pem())).await?;
    Ok((cert, key))
}

/// A key failure: the caller's own mistakes (a common name or a name that cannot go in a
/// certificate) are a bad request, the rest the gateway's fault.
fn key_error(e: CaError) -> AdminIssueError {
    match e {
        CaError::BadCsr(detail) => AdminIssueError::BadRequest(detail),
        other => AdminIssueError::Internal(other.to_string()),
    }
}

/// A fresh key of the requested type and a CSR (DER) for it naming the requested names; the
/// common name defaults to the first DNS name.
pub(crate) fn key_and_csr(
    request: &GenerateRequest,
) -> Result<(PrivateKey, Vec<u8>), AdminIssueError> {
    if request.dns_names.is_empty() && request.ip_addrs.is_empty() {
        return Err(AdminIssueError::BadRequest(
            "name at least one DNS name (dns_names) or IP address (ip_addresses)".into(),
        ));
    }
    let name = request.key_type.as_deref().unwrap_or(DEFAULT_KEY_TYPE);
    let key_type = KeyType::from_admin_name(name).ok_or_else(|| {
        AdminIssueError::BadRequest(format!(
            "key_type {name:?} is not one of {}",
            KeyType::ADMIN_NAMES.join(", ")
        ))
    })?;
    let key = PrivateKey::generate(key_type).map_err(key_error)?;
    let cn = request
        .common_name
        .as_deref()
        .or(request.dns_names.first().map(String::as_str));
    let der = key
        .csr(cn, &request.dns_names, &request.ip_addrs)
        .map_err(key_error)?;
    Ok((key, der))
}

/// Issues `csr` (for exactly the names it asks) under `profile` through the profile's issuer,
/// stores the result as an admin-issued certificate together with the deployments it is owed
/// (so a crash before they run loses none), sends the issuance notice and starts the
/// deployments. `private_key` (PEM) when the gateway generated the key: targets receive it too.
async fn issue_and_store(
    gw: &Arc<Gateway>,
    csr: Csr,
    profile: &Profile,
    actor: &str,
    private_key: Option<String>,
) -> Result<Certificate, AdminIssueError> {
    let cert = issue_certificate(gw, csr, profile, crate::store::ORIGIN_ADMIN).await?;
    let deployments = super::deploy::owed(gw, &cert, private_key.is_some());
    let cert = store_with_deployments(gw, cert, actor, &deployments).await?;
    super::notify::issued(gw, &cert).await;
    super::deploy::start(gw, deployments, private_key);
    Ok(cert)
}

/// Issues `csr` (for exactly the names it asks) under `profile` through the profile's issuer,
/// refusing the names an ACME order could not carry: the certificate to store, of `origin`.
/// Nothing is stored: the caller stores it with what belongs to it in one transaction.
pub(crate) async fn issue_certificate(
    gw: &Gateway,
    csr: Csr,
    profile: &Profile,
    origin: &str,
) -> Result<Certificate, AdminIssueError> {
    if csr.dns_names.is_empty() && csr.ip_addrs.is_empty() {
        return Err(AdminIssueError::BadRequest(
            "the CSR names no DNS name or IP address (in its SANs or CN)".into(),
        ));
    }
    let identifiers: Vec<Identifier> = csr
        .dns_names
        .iter()
        .cloned()
        .map(Identifier::dns)
        .chain(csr.ip_addrs.iter().map(|ip| Identifier::ip(*ip)))
        .collect();
    // The names ACME orders may not carry (reserved, single-label, malformed) are refused
    // here too, whatever the issuer would sign.
    crate::acme::identifiers::normalize(
        &identifiers,
        crate::acme::identifiers::LocalNames::allowed_if(profile.allow_local_names),
    )?;
    let subject = csr
        .common_name
        .clone()
        .unwrap_or_else(|| identifiers[0].value.clone());
    // An issuer recognises retries of one request by this URL.
    let request_url = format!("{}/api/v1/certificates#{}", gw.base_url, ids::new_id());
    let request = IssueRequest {
        dns_names: csr.dns_names.clone(),
        ip_addrs: csr.ip_addrs.clone(),
        csr,
        profile: profile.clone(),
        order_url: request_url.clone(),
        account_url: request_url,
    };
    let chain = issue_and_wait(gw, &profile.issuer, request).await?;
    Ok(chain.into_certificate(
        &profile.issuer,
        origin,
        serde_json::to_string(&identifiers).unwrap_or_else(|_| "[]".into()),
        subject,
    ))
}

/// Stores a certificate issued outside an ACME order, at `actor`'s request (admin API
/// identities, which no target receives).
pub async fn store_issued(
    gw: &Gateway,
    cert: Certificate,
    actor: &str,
) -> Result<Certificate, AdminIssueError> {
    store_with_deployments(gw, cert, actor, &[]).await
}

/// Stores `cert` and the `deployments` it is owed in one transaction.
async fn store_with_deployments(
    gw: &Gateway,
    cert: Certificate,
    actor: &str,
    deployments: &[DeploymentJob],
) -> Result<Certificate, AdminIssueError> {
    let (row, jobs) = (cert.clone(), deployments.to_vec());
    gw.db_as(actor, move |s| s.insert_certificate(&row, &jobs))
        .await
        .map_err(AdminIssueError::Store)?;
    Ok(cert)
}

/// Issues through `issuer_name`, polling an issuer that defers for up to [`ISSUE_WAIT`].
async fn issue_and_wait(
    gw: &Gateway,
    issuer_name: &str,
    request: IssueRequest,
) -> Result<IssuedChain, AdminIssueError> {
    let issuer = gw.issuer(issuer_name).ok_or_else(|| {
        AdminIssueError::Internal(format!("issuer {issuer_name:?} is not loaded"))
    })?;
    let deadline = tokio::time::Instant::now() + ISSUE_WAIT;
    let started = std::time::Instant::now();
    let mut outcome = issuer.issue(request.clone()).await;
    loop {
        match outcome {
            Ok(IssueOutcome::Issued(chain)) => {
                gw.metrics.issuance(started.elapsed());
                return Ok(chain);
            }
            Ok(IssueOutcome::Pending {
                handle,
                retry_after,
            }) => {
                let wait = Duration::from_secs(u64::from(retry_after.clamp(1, 10)));
                if tokio::time::Instant::now() + wait > deadline {
                    return Err(AdminIssueError::IssuerPending {
                        issuer: issuer_name.to_owned(),
                        handle,
                    });
                }
                tokio::time::sleep(wait).await;
                outcome = issuer.poll(&handle, &request).await;
            }
            Err(IssueError::Rejected(problem)) => return Err(problem.into()),
            Err(other) => {
                return Err(AdminIssueError::IssuerFailed {
                    issuer: issuer_name.to_owned(),
                    detail: other.to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key_type: Option<&str>, dns: &[&str]) -> GenerateRequest {
        GenerateRequest {
            dns_names: dns.iter().map(|d| d.to_string()).collect(),
            ip_addrs: vec!["10.0.0.7".parse().unwrap()],
            key_type: key_type.map(str::to_owned),
            ..GenerateRequest::default()
        }
    }

    #[test]
    fn a_generated_csr_names_what_was_asked_and_verifies() {
        let (key, der) = key_and_csr(&request(None, &["device.example"])).unwrap();
        assert_eq!(key.key_type(), KeyType::P256);
        let csr = crate::ca::parse_csr(&der).unwrap();
        assert_eq!(csr.common_name.as_deref(), Some("device.example"));
        assert_eq!(csr.dns_names, vec!["device.example"]);
        assert_eq!(csr.ip_addrs, vec!["10.0.0.7".parse::<IpAddr>().unwrap()]);
        let openssl_key = openssl::pkey::PKey::private_key_from_pkcs8(key.pkcs8_der()).unwrap();
        assert_eq!(csr.spki_der, openssl_key.public_key_to_der().unwrap());
        assert!(key.pkcs8_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn unknown_key_types_nameless_requests_and_bad_common_names_are_bad_requests() {
        let bad = |r: GenerateRequest| match key_and_csr(&r) {
            Err(AdminIssueError::BadRequest(detail)) => detail,
            other => panic!("expected a bad request, got {other:?}"),
        };
        assert!(bad(request(Some("dsa1024"), &["a.example"])).contains("dsa1024"));
        let mut nameless = request(None, &[]);
        nameless.ip_addrs.clear();
        assert!(bad(nameless).contains("name at least one"));
        let mut long_cn = request(None, &["a.example"]);
        long_cn.common_name = Some("a".repeat(65));
        assert!(bad(long_cn).contains("common name"));
        let (rsa, _) = key_and_csr(&request(Some("rsa2048"), &["a.example"])).unwrap();
        let openssl_key = openssl::pkey::PKey::private_key_from_pkcs8(rsa.pkcs8_der()).unwrap();
        assert_eq!(openssl_key.rsa().unwrap().size(), 256);
    }
}
