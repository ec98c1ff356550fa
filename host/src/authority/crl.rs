//! The gateway's own CRL, at the URL every certificate of the built-in CA names
//! (RFC 5280 §4.2.1.13): built on demand, cached, rebuilt after a revocation on this gateway
//! and at least every few minutes so that replicas sharing a database converge.

use std::sync::Mutex;

use super::{store_problem, Gateway};
use crate::acme::Problem;
use crate::ca::RevokedEntry;

/// How long a built CRL is served before it is rebuilt from the database. This replica's own
/// revocations show up at once, another replica's within a second (`super::housekeeping`
/// follows the database's revocation generation); this age is the fallback.
const CRL_MAX_AGE_SECONDS: i64 = 300;
/// nextUpdate: relying parties refetch within a day at the latest.
const CRL_VALIDITY_SECONDS: i64 = 86_400;

/// The cached CRL (DER) and when it was built.
#[derive(Debug, Default)]
pub struct CrlCache(Mutex<Option<(Vec<u8>, i64)>>);

impl CrlCache {
    /// Forgets the cached CRL so that the next request rebuilds it.
    pub fn invalidate(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The current CRL, DER-encoded.
pub async fn current(gw: &Gateway) -> Result<Vec<u8>, Problem> {
    let t = gw.now();
    if let Some((der, built)) = gw.crl.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if t - built < CRL_MAX_AGE_SECONDS {
            return Ok(der.clone());
        }
    }
    let revoked = gw
        .db(move |s| s.revoked_certificates(crate::ca::BUILTIN_ISSUER, t))
        .await
        .map_err(|e| store_problem(e, "certificates"))?;
    let entries: Vec<RevokedEntry> = revoked
        .into_iter()
        .map(|c| RevokedEntry {
            serial_hex: c.serial,
            revoked_at: c.revoked_at.unwrap_or(t),
            reason: c.revocation_reason.unwrap_or(0),
        })
        .collect();
    // CRL numbers must grow (RFC 5280 §5.2.3); milliseconds do across rebuilds and replicas.
    let number = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let der = gw
        .ca
        .crl(&entries, number, t, t + CRL_VALIDITY_SECONDS)
        .map_err(|e| Problem::server_internal(format!("failed to build the CRL: {e}")))?;
    *gw.crl.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((der.clone(), t));
    Ok(der)
}
