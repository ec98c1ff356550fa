//! Admin API identities: issued by admins (and by `acmegate admin-cert issue`), and managed by
//! the services that hold them under `/api/client/`: status, renewal from a CSR, revocation.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Role;
use super::certificates::{by_serial, parse_csr_text, revoke_certificate};
use super::views;
use super::{keygen, AdminRequest, ApiError};
use crate::authority::admin_issuance::store_issued;
use crate::authority::Gateway;
use crate::ca::Ca;
use crate::config::AdminConfig;
use crate::ids;
use crate::reply::Reply;
use crate::store::Certificate;

/// How far back an identity's notBefore goes, for clients whose clocks run a little slow.
const BACKDATE_SECS: i64 = 300;

/// An identity certificate for `common_name` with `role` (its subject OU is the first unit
/// configured for that role), on the key `spki_der` or a fresh P-256 key (returned as
/// PKCS#8). The row is what the store keeps; it is not stored here.
pub fn new_identity(
    ca: &Ca,
    config: &AdminConfig,
    common_name: &str,
    role: Role,
    spki_der: Option<&[u8]>,
    now: i64,
) -> Result<(Certificate, Option<Vec<u8>>), ApiError> {
    let units = match role {
        Role::Admin => &config.admin_units,
        Role::Client => &config.client_units,
        Role::Auditor => &config.auditor_units,
    };
    let unit = units.first().ok_or_else(|| {
        ApiError::bad_request(format!(
            "no subject OU is configured for the {} role (admin.{}_units)",
            role.name(),
            role.name()
        ))
    })?;
    let t = now;
    let validity = (
        t - BACKDATE_SECS,
        t + i64::from(config.identity_validity_days.max(1)) * 86_400,
    );
    let (issued, pkcs8) = ca
        .issue_identity(common_name, unit, validity, spki_der)
        .map_err(|e| ApiError::from(crate::authority::ca_problem(e)))?;
    let row = Certificate {
        id: ids::new_id(),
        serial: issued.serial_hex,
        account_id: None,
        order_id: None,
        chain_pem: issued.chain_pem,
        identifiers: "[]".into(),
        not_before: issued.not_before,
        not_after: issued.not_after,
        status: crate::acme::CertificateStatus::Valid,
        revoked_at: None,
        revocation_reason: None,
        created_at: t,
        issuer: crate::ca::BUILTIN_ISSUER.into(),
        origin: crate::store::ORIGIN_IDENTITY.into(),
        subject: common_name.to_owned(),
    };
    Ok((row, pkcs8))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityBody {
    common_name: String,
    role: Role,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

pub async fn issue_identity(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let body: IdentityBody = req.json()?;
    let delivery = keygen::Delivery::from_request(body.format.as_deref(), body.password.clone())?;
    let (row, pkcs8) = {
        let (ca, config, cn, role) = (
            gw.ca.clone(),
            gw.config.admin.clone(),
            body.common_name.clone(),
            body.role,
        );
        let now = gw.now();
        tokio::task::spawn_blocking(move || new_identity(&ca, &config, &cn, role, None, now))
            .await
            .map_err(|e| ApiError::internal(format!("identity task failed: {e}")))??
    };
    let cert = store_issued(gw, row, &req.caller.actor()).await?;
    tracing::info!(serial = %cert.serial, subject = %cert.subject, role = body.role.name(), actor = %req.caller.actor(), "admin API identity issued");
    let key = keygen::key_from_pkcs8(&pkcs8.unwrap_or_default())?;
    let mut view = views::certificate(&cert);
    view["chain_pem"] = Value::from(cert.chain_pem.clone());
    delivery.reply(&cert, view, &key)
}

/// The caller's own certificate as the gateway stored it.
async fn own_certificate(gw: &Gateway, req: &AdminRequest) -> Result<Certificate, ApiError> {
    by_serial(gw, &req.caller.serial).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::forbidden(
                "this certificate was not issued by this gateway; it can call the client API but not manage itself here",
            )
        } else {
            e
        }
    })
}

pub async fn certificate(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let cert = own_certificate(gw, req).await?;
    let mut view = views::certificate(&cert);
    view["chain_pem"] = Value::from(cert.chain_pem.clone());
    view["role"] = Value::from(req.caller.role.name());
    Ok(Reply::json(StatusCode::OK, &view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    csr: String,
}

/// A new identity for the caller (same common name and role) on the key of its CSR. The old
/// certificate stays valid so that the service can switch over; it may revoke it after.
pub async fn renew(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let body: RenewBody = req.json()?;
    let current = own_certificate(gw, req).await?;
    if current.origin != crate::store::ORIGIN_IDENTITY {
        return Err(ApiError::forbidden(
            "only admin API identities are renewed here",
        ));
    }
    let csr = parse_csr_text(&body.csr)?;
    let row = {
        let (ca, config, cn, role) = (
            gw.ca.clone(),
            gw.config.admin.clone(),
            current.subject.clone(),
            req.caller.role,
        );
        let now = gw.now();
        tokio::task::spawn_blocking(move || {
            new_identity(&ca, &config, &cn, role, Some(&csr.spki_der), now)
        })
        .await
        .map_err(|e| ApiError::internal(format!("identity task failed: {e}")))??
        .0
    };
    let cert = store_issued(gw, row, &req.caller.actor()).await?;
    tracing::info!(old = %current.serial, new = %cert.serial, subject = %cert.subject, "admin API identity renewed");
    let mut view = views::certificate(&cert);
    view["chain_pem"] = Value::from(cert.chain_pem.clone());
    Ok(Reply::json(StatusCode::CREATED, &view))
}

/// Revokes the caller's own certificate; its next connection is refused.
pub async fn revoke(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let reason = req.json::<views::RevokeBody>()?.reason()?;
    let cert = own_certificate(gw, req).await?;
    revoke_certificate(gw, &cert, reason, &req.caller.actor()).await?;
    let updated = by_serial(gw, &cert.serial).await?;
    Ok(Reply::json(StatusCode::OK, &views::certificate(&updated)))
}
