//! The CRL at the URL every issued certificate names (RFC 5280 §4.2.1.13), built on demand,
//! cached, rebuilt after a revocation on this gateway and at least every few minutes so that
//! replicas sharing a database converge.

use std::sync::Mutex;

use http::StatusCode;

use super::{now, store_problem, Gateway, Reply};
use crate::acme::Problem;
use crate::ca::RevokedEntry;

/// How long a built CRL is served before it is rebuilt from the database. Another replica's
/// revocation shows up within this time; this replica's own ones show up at once.
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
    let t = now();
    if let Some((der, built)) = gw.crl.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if t - built < CRL_MAX_AGE_SECONDS {
            return Ok(der.clone());
        }
    }
    let revoked = gw
        .db(move |s| s.revoked_certificates(crate::issuance::BUILTIN, t))
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

/// GET `/ca/crl.der` or `/ca/crl.pem`.
pub async fn serve(gw: &Gateway, pem: bool) -> Reply {
    crl_reply(current(gw).await, pem)
}

/// Prefix of the public routes of issuer plugins: `/ca/issuers/<name>/crl.der`, `crl.pem`
/// and `ca.pem`. Certificates of such issuers name no CRL of the gateway's; relying parties
/// fetch their CA's CRL here (for a uPKI CA, as the CA built it).
pub const ISSUERS_PREFIX: &str = "/ca/issuers/";

/// GET under [`ISSUERS_PREFIX`]; `None` when the path is not one of its routes.
pub async fn serve_issuer(gw: &Gateway, path: &str) -> Option<Reply> {
    let (name, file) = path.strip_prefix(ISSUERS_PREFIX)?.split_once('/')?;
    let plugin = match gw.issuer(name) {
        Some(crate::issuance::Issuer::Plugin(plugin)) => plugin,
        _ => {
            return Some(Reply::problem(
                &Problem::malformed(format!("no issuer plugin named {name:?}")).with_status(404),
            ))
        }
    };
    let unavailable = |what: &str, e: String| {
        Problem::server_internal(format!("issuer {name:?} could not give its {what}: {e}"))
    };
    Some(match file {
        "crl.der" | "crl.pem" => {
            let crl = match plugin.crl().await {
                Ok(Ok(der)) => Ok(der),
                Ok(Err(e)) => Err(unavailable("CRL", format!("{e:?}"))),
                Err(fault) => Err(unavailable("CRL", fault.to_string())),
            };
            crl_reply(crl, file == "crl.pem")
        }
        "ca.pem" => match plugin.ca_chain().await {
            Ok(Ok(pem)) => Reply::bytes(StatusCode::OK, "application/x-pem-file", pem),
            Ok(Err(e)) => Reply::problem(&unavailable("CA chain", format!("{e:?}"))),
            Err(fault) => Reply::problem(&unavailable("CA chain", fault.to_string())),
        },
        _ => return None,
    })
}

fn crl_reply(crl: Result<Vec<u8>, Problem>, pem: bool) -> Reply {
    match crl {
        Ok(der) if pem => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or(""))
                .collect();
            let text = format!(
                "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
                lines.join("\n")
            );
            Reply::bytes(StatusCode::OK, "application/x-pem-file", text)
        }
        Ok(der) => Reply::bytes(StatusCode::OK, "application/pkix-crl", der),
        Err(p) => Reply::problem(&p),
    }
}
