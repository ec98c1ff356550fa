//! Certificates: download (RFC 8555 §7.4.2) and revocation (§7.6), by the ordering account, an
//! account holding authorizations for every name, or the certificate's own key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use http::StatusCode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Deserialize;

use super::auth::{authenticate, KeyRule};
use super::ca_problem;
use super::{now, store_problem, Gateway, Incoming, Reply};
use crate::acme::{Identifier, Problem};
use crate::issuance::{IssueError, RevokeRequest};
use crate::store::StoreError;

/// RFC 5280 §5.3.1 reason codes a subscriber may give (as Boulder allows): unspecified,
/// keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.
const SUBSCRIBER_REASONS: [i32; 6] = [0, 1, 3, 4, 5, 9];

pub async fn download(gw: &Gateway, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    signed.require_post_as_get()?;
    let account = signed.account()?;
    let cid = id.to_string();
    let cert = gw
        .db(move |s| s.certificate(&cid))
        .await
        .map_err(|e| store_problem(e, "certificate"))?;
    if cert.account_id.as_deref() != Some(account.id.as_str()) {
        return Err(Problem::unauthorized(
            "this certificate belongs to another account",
        ));
    }
    Ok(Reply::bytes(
        StatusCode::OK,
        "application/pem-certificate-chain",
        cert.chain_pem,
    ))
}

#[derive(Deserialize)]
struct Revocation {
    certificate: String,
    #[serde(default)]
    reason: Option<i32>,
}

/// The first certificate of a PEM chain, as DER.
pub(crate) fn leaf_der(chain_pem: &str) -> Option<Vec<u8>> {
    CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

pub async fn revoke(gw: &Gateway, req: &Incoming) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Either).await?;
    let body: Revocation = signed.jws.json_payload()?;
    let reason = body.reason.unwrap_or(0);
    if !SUBSCRIBER_REASONS.contains(&reason) {
        return Err(Problem::bad_revocation_reason(format!(
            "reason {reason} is not allowed; use one of {SUBSCRIBER_REASONS:?} (RFC 5280 §5.3.1)"
        )));
    }
    let der = B64
        .decode(body.certificate.trim_end_matches('='))
        .map_err(|_| Problem::malformed("certificate is not base64url DER"))?;
    let info = crate::ca::certificate_info(&der).map_err(ca_problem)?;
    let serial = info.serial_hex.clone();
    let cert = gw
        .db(move |s| s.certificate_by_serial(&serial))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => {
                Problem::malformed("this server did not issue that certificate").with_status(404)
            }
            other => store_problem(other, "certificate"),
        })?;
    if leaf_der(&cert.chain_pem).as_deref() != Some(der.as_slice()) {
        return Err(
            Problem::malformed("this server did not issue that certificate").with_status(404),
        );
    }
    match &signed.account {
        Some(account) if cert.account_id.as_deref() == Some(account.id.as_str()) => {}
        Some(account) => {
            // RFC 8555 §7.6: another account needs valid authorizations for every name.
            let names: Vec<Identifier> =
                serde_json::from_str(&cert.identifiers).unwrap_or_default();
            let aid = account.id.clone();
            let authorized = gw
                .db(move |s| {
                    let t = now();
                    for id in &names {
                        let value = id.value.trim_start_matches("*.");
                        if !s.has_valid_authorization(&aid, id.kind.as_str(), value, t)? {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })
                .await
                .map_err(|e| store_problem(e, "authorization"))?;
            if !authorized {
                return Err(Problem::unauthorized(
                    "the account neither ordered this certificate nor holds valid authorizations for all its names",
                ));
            }
        }
        // Signed with `jwk`: it must be the certificate's own key (§7.6).
        None => signed.jws.verify_with_spki(&info.spki_der)?,
    }
    let actor = match &signed.account {
        Some(account) => super::acme_actor(&account.id),
        None => "acme:certificate-key".to_string(),
    };
    revoke_stored(gw, &cert, &der, reason, &actor).await?;
    Ok(Reply::empty(StatusCode::OK))
}

/// Revokes a stored certificate (`der` is its leaf) at its issuer, then in the store, and
/// rebuilds the CRL: the one path for ACME clients and admins. `actor` is who asked, for the
/// audit log.
pub(crate) async fn revoke_stored(
    gw: &Gateway,
    cert: &crate::store::Certificate,
    der: &[u8],
    reason: i32,
    actor: &str,
) -> Result<(), Problem> {
    if cert.status == "revoked" {
        return Err(Problem::already_revoked(
            "the certificate is already revoked",
        ));
    }
    let issuer = gw.issuer(&cert.issuer).ok_or_else(|| {
        Problem::server_internal(format!(
            "issuer {:?} of this certificate is no longer configured; it cannot be revoked",
            cert.issuer
        ))
    })?;
    issuer
        .revoke(RevokeRequest {
            certificate: der,
            serial_hex: &cert.serial,
            reason: u8::try_from(reason).unwrap_or(0),
        })
        .await
        .map_err(|e| match e {
            IssueError::Rejected(problem) => problem,
            other => Problem::server_internal(format!(
                "issuer {:?} could not revoke the certificate: {other}",
                cert.issuer
            )),
        })?;
    let serial = cert.serial.clone();
    let done = gw
        .db_as(actor, move |s| s.revoke_certificate(&serial, reason, now()))
        .await
        .map_err(|e| store_problem(e, "certificate"))?;
    if !done {
        return Err(Problem::already_revoked(
            "the certificate is already revoked",
        ));
    }
    gw.crl.invalidate();
    gw.metrics.revocation();
    crate::notify::revoked(gw, cert, reason);
    tracing::info!(serial = %cert.serial, reason, "certificate revoked");
    Ok(())
}
