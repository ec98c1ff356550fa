//! Certificates, as operators handle them: list with filters, get, revoke with a reason, issue
//! from a CSR under a profile, and issue with a key the gateway generates (the uPKI `generate`
//! use case: a device that cannot make its own key gets a PEM bundle or a PKCS#12).

use std::net::IpAddr;
use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::keygen::Delivery;
use super::views::{self, Paging};
use super::{AdminRequest, ApiError};
use crate::authority::admin_issuance::{self, GenerateRequest};
use crate::authority::Gateway;
use crate::ca::Csr;
use crate::reply::Reply;
use crate::store::{Certificate, CertificateFilter};

pub async fn list(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let paging = Paging::from_query(&req.query, gw.config.admin.per_page)?;
    let (q, now) = (&req.query, gw.now());
    let filter = CertificateFilter {
        name: q.get("name").map(|n| n.to_ascii_lowercase()),
        serial: q.get("serial").map(|s| normalize_serial(s)),
        status: super::acme::status_filter(req, &["valid", "revoked"])?,
        expiring_before: q
            .get("expiring_before")
            .map(|t| parse_time(t, now))
            .transpose()?,
        origin: super::acme::state_filter(
            req,
            "origin",
            &["acme", "admin", "identity", "managed"],
        )?,
        issuer: q.get("issuer").cloned(),
        valid_at: None,
    };
    let page = gw
        .db(move |s| s.list_certificates(&filter, paging.request()))
        .await
        .map_err(|e| ApiError::store(e, "certificates"))?;
    Ok(paging.reply(page, views::certificate))
}

/// `ab:CD:01` and `0xABCD01` as the store keeps serials: lower-case hex, no separators.
fn normalize_serial(serial: &str) -> String {
    let s = serial.trim().trim_start_matches("0x").replace(':', "");
    s.trim_start_matches('0').to_ascii_lowercase()
}

/// A point in time: RFC 3339, Unix seconds, or `<n>d` (days from `now`).
pub(super) fn parse_time(text: &str, now: i64) -> Result<i64, ApiError> {
    if let Some(days) = text.strip_suffix('d').and_then(|d| d.parse::<i64>().ok()) {
        return Ok(now + days * 86_400);
    }
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{text:?} is not a time: use RFC 3339, Unix seconds or days from now like 30d"
            ))
        })
}

/// The stored certificate with this serial.
pub(super) async fn by_serial(gw: &Gateway, serial: &str) -> Result<Certificate, ApiError> {
    let serial = normalize_serial(serial);
    gw.db(move |s| s.certificate_by_serial(&serial))
        .await
        .map_err(|e| ApiError::store(e, "certificate"))
}

pub async fn get(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let cert = by_serial(gw, req.param(0)).await?;
    let mut view = detailed(&cert);
    let renewal = crate::authority::renewal::renewal_view(gw, &cert.serial)
        .await
        .map_err(|e| ApiError::store(e, "certificate"))?;
    if let Some(renewal) = renewal {
        view["renewal"] = renewal_json(&renewal);
    }
    Ok(Reply::json(StatusCode::OK, &view))
}

/// What a certificate's ARI clients are told (RFC 9773 §4.2), and why.
fn renewal_json(renewal: &crate::authority::renewal::RenewalView) -> Value {
    let rfc3339 = crate::reply::rfc3339;
    serde_json::json!({
        "window_start": rfc3339(renewal.window.start),
        "window_end": rfc3339(renewal.window.end),
        "moved": renewal.moved.as_ref().map(|(why, _)| why.slug()),
        "explanation_url": renewal.moved.as_ref().map(|(_, page)| page),
        "replaced_by": renewal.replaced_by,
    })
}

/// The listing view plus the PEM chain and what the leaf itself says.
fn detailed(cert: &Certificate) -> Value {
    let mut view = views::certificate(cert);
    view["chain_pem"] = Value::from(cert.chain_pem.clone());
    if let Some(der) = crate::authority::revocation::leaf_der(&cert.chain_pem) {
        if let Ok(info) = crate::ca::certificate_info(&der) {
            let fingerprint = ring::digest::digest(&ring::digest::SHA256, &der);
            view["parsed"] = serde_json::json!({
                "subject_cn": info.subject_cn,
                "subject_ou": info.subject_units,
                "dns_names": info.dns_names,
                "ip_addresses": info.ip_addrs,
                "not_before": crate::reply::rfc3339(info.not_before),
                "not_after": crate::reply::rfc3339(info.not_after),
                "sha256_fingerprint": crate::hex::lower(fingerprint.as_ref()),
            });
        }
    }
    view
}

pub async fn revoke(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let reason = req.json::<views::RevokeBody>()?.reason()?;
    let cert = by_serial(gw, req.param(0)).await?;
    revoke_certificate(gw, &cert, reason, &req.caller.actor()).await?;
    let updated = by_serial(gw, &cert.serial).await?;
    Ok(Reply::json(StatusCode::OK, &views::certificate(&updated)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    /// Target names; absent means every target that covers the certificate's names.
    #[serde(default)]
    targets: Option<Vec<String>>,
}

/// Deploys a stored certificate now, one attempt per target (with verify), and answers what
/// each target did: for an operator redeploying after a target was down, or to a target added
/// later. Keys are never stored, so targets receive the chain only.
pub async fn deploy(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let body: DeployBody = req.json()?;
    let cert = by_serial(gw, req.param(0)).await?;
    if cert.status != crate::acme::CertificateStatus::Valid {
        return Err(ApiError::conflict(format!(
            "certificate {} is {}; only valid certificates are deployed",
            cert.serial, cert.status
        )));
    }
    let targets: Vec<&crate::authority::deploy::Target> = match &body.targets {
        None => crate::authority::deploy::targets_for(gw, &cert),
        Some(names) => names
            .iter()
            .map(|name| {
                gw.targets
                    .iter()
                    .find(|t| &t.name == name)
                    .ok_or_else(|| ApiError::not_found(format!("no target named {name:?}")))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut reports = Vec::with_capacity(targets.len());
    for target in targets {
        reports.push(crate::authority::deploy::deploy_now(gw, target, &cert).await);
    }
    tracing::info!(serial = %cert.serial, actor = %req.caller.actor(), targets = reports.len(), "certificate deployed through the admin API");
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({ "serial": cert.serial, "deployments": reports }),
    ))
}

/// Revokes `cert` at its issuer and in the store; the CRL is rebuilt before the next
/// admin connection is accepted.
pub(super) async fn revoke_certificate(
    gw: &Gateway,
    cert: &Certificate,
    reason: i32,
    actor: &str,
) -> Result<(), ApiError> {
    let der = crate::authority::revocation::leaf_der(&cert.chain_pem).ok_or_else(|| {
        ApiError::internal(format!("stored chain of {} is unreadable", cert.serial))
    })?;
    crate::authority::revocation::revoke_stored(gw, cert, &der, reason, actor).await?;
    tracing::info!(serial = %cert.serial, reason, %actor, "certificate revoked through the admin API");
    Ok(())
}

/// renew-now's filter: every given field must match; at least one must be given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewNowBody {
    /// Identifiers (dns names with `*.` for wildcards, IP addresses); a certificate naming any.
    #[serde(default)]
    names: Vec<String>,
    /// Serials (any spelling `normalize_serial` reads); a certificate with any.
    #[serde(default)]
    serials: Vec<String>,
    profile: Option<String>,
    issuer: Option<String>,
    /// notBefore at or after: RFC 3339, Unix seconds or `-30d`-style days from now.
    issued_after: Option<String>,
    /// notBefore before.
    issued_before: Option<String>,
    /// A page for the certificates' owners (e.g. the incident's); the gateway's own otherwise.
    explanation_url: Option<String>,
}

/// Moves the ARI window (RFC 9773) of every valid, unexpired certificate matching the filter
/// into the past, so that their ARI clients renew at once: incident response. Audited; answers
/// how many and which.
pub async fn renew_now(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let body: RenewNowBody = req.json()?;
    let now = gw.now();
    let time = |t: &Option<String>| t.as_deref().map(|t| parse_time(t, now)).transpose();
    let filter = crate::store::RenewNowFilter {
        names: body
            .names
            .iter()
            .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        serials: body.serials.iter().map(|s| normalize_serial(s)).collect(),
        profile: body.profile,
        issuer: body.issuer,
        issued_after: time(&body.issued_after)?,
        issued_before: time(&body.issued_before)?,
        unmoved_only: false,
    };
    if filter.names.is_empty()
        && filter.serials.is_empty()
        && filter.profile.is_none()
        && filter.issuer.is_none()
        && filter.issued_after.is_none()
        && filter.issued_before.is_none()
    {
        return Err(ApiError::bad_request(
            "give at least one of names, serials, profile, issuer, issued_after, issued_before: \
             renew-now moves the window of every certificate that matches",
        ));
    }
    if let Some(page) = &body.explanation_url {
        let parsed = url::Url::parse(page)
            .map_err(|e| ApiError::bad_request(format!("explanation_url {page:?}: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(ApiError::bad_request(format!(
                "explanation_url {page:?} is not an http(s) URL"
            )));
        }
    }
    let serials =
        crate::authority::renewal::renew_now(gw, filter, body.explanation_url, &req.caller.actor())
            .await
            .map_err(|e| ApiError::store(e, "certificates"))?;
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "count": serials.len(),
            "serials": serials,
            "moved_to": crate::reply::rfc3339(now),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    /// PEM, or base64/base64url DER.
    csr: String,
    profile: Option<String>,
}

pub async fn issue(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let body: IssueBody = req.json()?;
    let csr = parse_csr_text(&body.csr)?;
    let actor = req.caller.actor();
    let cert = admin_issuance::issue_from_csr(gw, csr, body.profile.as_deref(), &actor).await?;
    tracing::info!(serial = %cert.serial, %actor, "certificate issued from a CSR through the admin API");
    Ok(Reply::json(StatusCode::CREATED, &detailed(&cert)))
}

/// A CSR given as PEM or as base64 (standard or url-safe) DER, with its signature verified.
pub(super) fn parse_csr_text(text: &str) -> Result<Csr, ApiError> {
    use base64::Engine;
    let text = text.trim();
    let der = if text.starts_with("-----BEGIN") {
        match rustls_pki_types::pem::from_buf(&mut text.as_bytes()) {
            Ok(Some((rustls_pki_types::pem::SectionKind::Csr, der))) => der,
            _ => {
                return Err(ApiError::bad_request(
                    "csr is PEM but not a CERTIFICATE REQUEST",
                ))
            }
        }
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(compact.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(&compact))
            .map_err(|_| ApiError::bad_request("csr is neither PEM nor base64 DER"))?
    };
    crate::ca::parse_csr(&der).map_err(|e| ApiError::from(crate::authority::ca_problem(e)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody {
    common_name: Option<String>,
    #[serde(default)]
    dns_names: Vec<String>,
    #[serde(default)]
    ip_addresses: Vec<IpAddr>,
    profile: Option<String>,
    /// `p256` (default), `p384`, `rsa2048` or `rsa3072`.
    #[serde(default)]
    key_type: Option<String>,
    /// `pem` (default: JSON with the key and chain in PEM) or `pkcs12` (binary).
    #[serde(default)]
    format: Option<String>,
    /// Protects the PKCS#12; required for it.
    #[serde(default)]
    password: Option<String>,
}

pub async fn generate(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let body: GenerateBody = req.json()?;
    let delivery = Delivery::from_request(body.format.as_deref(), body.password.clone())?;
    let request = GenerateRequest {
        common_name: body.common_name,
        dns_names: body.dns_names,
        ip_addrs: body.ip_addresses,
        profile: body.profile,
        key_type: body.key_type,
    };
    let actor = req.caller.actor();
    let (cert, key) = admin_issuance::generate(gw, request, &actor).await?;
    tracing::info!(serial = %cert.serial, %actor, "certificate with a generated key issued through the admin API");
    delivery.reply(&cert, detailed(&cert), &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_normalized() {
        assert_eq!(normalize_serial("0A:1b:FF"), "a1bff");
        assert_eq!(normalize_serial("0x00ab"), "ab");
        assert_eq!(normalize_serial(" deadbeef "), "deadbeef");
    }

    #[test]
    fn times_in_three_spellings() {
        assert_eq!(parse_time("1700000000", 0).unwrap(), 1_700_000_000);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", 0).unwrap(),
            1_700_000_000
        );
        let in_30_days = parse_time("30d", 1_000).unwrap() - 1_000;
        assert!((30 * 86_400 - 2..=30 * 86_400).contains(&in_30_days));
        assert!(parse_time("next week", 0).is_err());
    }
}
