//! Revocation (RFC 8555 §7.6): who may revoke a certificate, with which reasons, and the one
//! path every revocation takes (the issuer, then the store, the CRL and the notifiers), for
//! ACME clients and admins alike.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::issuance::{IssueError, RevokeRequest};
use super::{acme_actor, ca_problem, store_problem, Gateway};
use crate::acme::{Identifier, Problem};
use crate::store::{Account, StoreError};

/// RFC 5280 §5.3.1 reason codes a subscriber may give (as Boulder allows): unspecified,
/// keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.
pub const SUBSCRIBER_REASONS: [i32; 6] = [0, 1, 3, 4, 5, 9];

/// Who asks an ACME revocation: an account (signed with `kid`), or whoever holds a key
/// (signed with `jwk`), which must then be the certificate's own key.
pub enum Requester<'a> {
    Account(&'a Account),
    /// Checks that a public key (SubjectPublicKeyInfo DER) verifies the request's signature.
    Key(&'a (dyn Fn(&[u8]) -> Result<(), Problem> + Sync)),
}

impl std::fmt::Debug for Requester<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Account(account) => f.debug_tuple("Account").field(&account.id).finish(),
            Self::Key(_) => f.write_str("Key"),
        }
    }
}

/// An ACME client's revocation of the certificate `der` for `reason`.
pub async fn revoke_by_client(
    gw: &Gateway,
    der: &[u8],
    reason: i32,
    requester: Requester<'_>,
) -> Result<(), Problem> {
    if !SUBSCRIBER_REASONS.contains(&reason) {
        return Err(Problem::bad_revocation_reason(format!(
            "reason {reason} is not allowed; use one of {SUBSCRIBER_REASONS:?} (RFC 5280 §5.3.1)"
        )));
    }
    let info = crate::ca::certificate_info(der).map_err(ca_problem)?;
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
    if leaf_der(&cert.chain_pem).as_deref() != Some(der) {
        return Err(
            Problem::malformed("this server did not issue that certificate").with_status(404),
        );
    }
    let actor = match requester {
        Requester::Account(account) if cert.account_id.as_deref() == Some(account.id.as_str()) => {
            acme_actor(&account.id)
        }
        Requester::Account(account) => {
            // RFC 8555 §7.6: another account needs valid authorizations for every name.
            let names: Vec<Identifier> =
                serde_json::from_str(&cert.identifiers).unwrap_or_default();
            let authorized = super::authorizations::holds_all(gw, &account.id, &names).await?;
            if !authorized {
                return Err(Problem::unauthorized(
                    "the account neither ordered this certificate nor holds valid authorizations for all its names",
                ));
            }
            acme_actor(&account.id)
        }
        // Signed with `jwk`: it must be the certificate's own key (§7.6).
        Requester::Key(is_signing_key) => {
            is_signing_key(&info.spki_der)?;
            "acme:certificate-key".to_string()
        }
    };
    revoke_stored(gw, &cert, der, reason, &actor).await
}

/// The first certificate of a PEM chain, as DER.
pub fn leaf_der(chain_pem: &str) -> Option<Vec<u8>> {
    CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

/// Revokes a stored certificate (`der` is its leaf) at its issuer, then in the store, and
/// rebuilds the CRL: the one path for ACME clients and admins. `actor` is who asked, for the
/// audit log.
pub async fn revoke_stored(
    gw: &Gateway,
    cert: &crate::store::Certificate,
    der: &[u8],
    reason: i32,
    actor: &str,
) -> Result<(), Problem> {
    if cert.status == crate::acme::CertificateStatus::Revoked {
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
    let (serial, now) = (cert.serial.clone(), gw.now());
    let done = gw
        .db_as(actor, move |s| s.revoke_certificate(&serial, reason, now))
        .await
        .map_err(|e| store_problem(e, "certificate"))?;
    if !done {
        return Err(Problem::already_revoked(
            "the certificate is already revoked",
        ));
    }
    gw.crl.invalidate();
    gw.metrics.revocation();
    super::notify::revoked(gw, cert, reason);
    tracing::info!(serial = %cert.serial, reason, "certificate revoked");
    Ok(())
}
