//! Managed certificates: for services that cannot run an ACME client, the gateway generates
//! the key, issues through the profile's issuer, deploys to the named targets with their
//! deployer plugins and renews before expiry, on its own.
//!
//! The schedule is the `managed_certificates` table: a worker on every replica claims rows
//! that are due with a lease (the issuance lease's length), so each round is done once across
//! replicas and a round cut short by a crash is taken up again when its lease runs out. A
//! round either issues (a new key and certificate, stored with the key sealed in the row's
//! transaction) and deploys, or, when the last round issued but did not deploy everywhere,
//! deploys the current certificate again. It ends with the next due time: the renewal time on
//! success, the issuance backoff on failure.
//!
//! Keys: generated in this process, sealed with AES-256-GCM under a key derived from the CA key
//! secret ([`KEY_PURPOSE`]) and stored sealed with the certificate, bound to the row's name and
//! the serial; opened in memory for a deployment and dropped after it. Never in the database
//! in clear, never logged.
//!
//! Time: renewals are scheduled on the gateway's clock. The renewal point is found in the
//! certificate's lifetime (its ARI window, RFC 9773, or `renew_at_percent`) and counted from
//! the moment the gateway received the certificate, so an issuer whose clock differs from the
//! gateway's (or a test clock moved ahead) neither hastens nor delays a renewal.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::admin_issuance::{self, AdminIssueError, GenerateRequest};
use super::deploy::Report;
use super::leases::{spawn_claiming, Pace};
use super::Gateway;
use crate::acme::renewal::default_window;
use crate::config::ManagedConfig;
use crate::store::{Certificate, ManagedCertificate, StoreError, MANAGED_ACTIVE, ORIGIN_MANAGED};

/// Purpose of the key that seals managed certificates' private keys, derived from the CA key
/// secret (which every replica of one PKI holds).
pub const KEY_PURPOSE: &[u8] = b"acmegate managed keys v1";

/// Consecutive failed rounds after which a failure is reported as critical: a renewal that
/// failed three times with backoff is not a blip, and the certificate's remaining lifetime is
/// running out.
pub const ESCALATE_AFTER: i32 = 3;

/// How often the worker looks for due rows: a renewal is at most this late.
const TICK: Duration = Duration::from_secs(1);
/// Rows claimed per tick.
const CLAIM_BATCH: i64 = 8;

/// Where in a certificate's lifetime to renew it, as seconds after `not_before`: at
/// `percent` of the lifetime, or else in the middle of its default ARI window (RFC 9773
/// §4.2, spread per certificate by its serial so that a fleet does not renew at once).
pub fn renewal_offset(not_before: i64, not_after: i64, serial: &[u8], percent: Option<i32>) -> i64 {
    let lifetime = not_after.saturating_sub(not_before).max(1);
    match percent {
        Some(p) => lifetime * i64::from(p.clamp(1, 99)) / 100,
        None => {
            let window = default_window(not_before, not_after, serial);
            (window.start + (window.end - window.start) / 2) - not_before
        }
    }
}

/// A managed certificate's row for `spec`, new and due at `now`.
pub fn new_row(gw: &Gateway, spec: &ManagedConfig, declared: bool, now: i64) -> ManagedCertificate {
    let profile = if spec.profile.is_empty() {
        gw.config.acme.default_profile.clone()
    } else {
        spec.profile.clone()
    };
    ManagedCertificate {
        name: spec.name.clone(),
        names: serde_json::to_string(&spec.names).unwrap_or_else(|_| "[]".into()),
        profile,
        key_type: spec.key_type.clone(),
        targets: serde_json::to_string(&spec.targets).unwrap_or_else(|_| "[]".into()),
        renew_at_percent: spec.renew_at_percent.map(i32::from),
        state: MANAGED_ACTIVE.into(),
        declared,
        next_renewal_at: now,
        certificate_serial: None,
        sealed_key: None,
        renew_at: None,
        deployed_serial: None,
        last_deployment: None,
        failures: 0,
        last_error: None,
        lease_owner: None,
        lease_until: 0,
        created_at: now,
        updated_at: now,
    }
}

/// Declares the config file's `[[managed]]` entries in the store (new ones are due at once).
pub async fn declare_configured(gw: &Gateway) -> Result<(), StoreError> {
    let now = gw.now();
    for spec in &gw.config.managed {
        let row = new_row(gw, spec, true, now);
        gw.db(move |s| s.declare_managed(&row, now)).await?;
    }
    Ok(())
}

/// Runs the managed certificates' worker until `stop` turns true: every [`TICK`], claims the
/// rows due on the gateway's clock and works each in the background.
pub fn spawn_worker(gw: Arc<Gateway>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let pace = Pace {
        what: "managed certificates",
        poll: TICK,
        lease_seconds: super::deploy::lease_seconds(&gw),
        batch: CLAIM_BATCH,
    };
    spawn_claiming(
        gw,
        stop,
        pace,
        |s, owner, t, until, batch| s.claim_due_managed(owner, t, until, batch),
        |gw, row| async move { round(&gw, row).await },
    )
}

/// What the last deployment of a managed certificate came to, as the row keeps it.
#[derive(Debug, Serialize)]
struct Deployment<'a> {
    serial: &'a str,
    at: i64,
    deployed: bool,
    targets: &'a [Report],
}

/// Why a round did not end with every target holding a current certificate.
enum Failure {
    /// No new certificate (the key, the issuer, the store).
    Renewal(String),
    /// A certificate that some target did not take; the reports say which and why.
    Deployment {
        cert: Box<Certificate>,
        reports: Vec<Report>,
    },
}

/// A round that did its work: the certificate every target holds, whether this round issued
/// it, what each target said, and when the certificate is due for renewal.
struct Done {
    cert: Certificate,
    issued: bool,
    reports: Vec<Report>,
    /// When `cert` is due for renewal, on the gateway's clock.
    renew_at: Option<i64>,
}

/// One round on a row this process holds, then its record and notices.
async fn round(gw: &Arc<Gateway>, row: ManagedCertificate) {
    let owner = gw.issuance.owner().to_owned();
    let outcome = work(gw, &row, &owner).await;
    let now = gw.now();
    let mut next = row.clone();
    match &outcome {
        Ok(done) => {
            let deployment = Deployment {
                serial: &done.cert.serial,
                at: now,
                deployed: true,
                targets: &done.reports,
            };
            next.last_deployment = serde_json::to_string(&deployment).ok();
            next.deployed_serial = Some(done.cert.serial.clone());
            next.failures = 0;
            next.last_error = None;
            next.next_renewal_at = done.renew_at.unwrap_or(now);
            tracing::info!(managed = %row.name, serial = %done.cert.serial, issued = done.issued, next_renewal_at = next.next_renewal_at, "managed certificate deployed");
        }
        Err(failure) => {
            next.failures = row.failures.saturating_add(1);
            let attempts = u32::try_from(next.failures).unwrap_or(u32::MAX);
            next.next_renewal_at = now + gw.config.issuance.retry.delay(attempts, None);
            let error = match failure {
                Failure::Renewal(error) => error.clone(),
                Failure::Deployment { cert, reports } => {
                    let deployment = Deployment {
                        serial: &cert.serial,
                        at: now,
                        deployed: false,
                        targets: reports,
                    };
                    next.last_deployment = serde_json::to_string(&deployment).ok();
                    failed_targets(reports)
                }
            };
            tracing::warn!(managed = %row.name, failures = next.failures, retry_at = next.next_renewal_at, %error, "managed certificate round failed");
            next.last_error = Some(error);
        }
    }
    let recorded = {
        let (next, owner) = (next.clone(), owner.clone());
        gw.db(move |s| s.finish_managed(&next, &owner, now)).await
    };
    match recorded {
        // Told once: by the process whose record the round is.
        Ok(true) => notify(gw, &row, &next, &outcome),
        Ok(false) => {
            tracing::warn!(managed = %row.name, "managed certificate was taken over before its round was recorded")
        }
        Err(e) => {
            tracing::error!(managed = %row.name, error = %e, "managed certificate round could not be recorded")
        }
    }
}

fn failed_targets(reports: &[Report]) -> String {
    reports
        .iter()
        .filter(|r| !r.deployed)
        .map(|r| {
            format!(
                "target {}: {}",
                r.target,
                r.error.as_deref().unwrap_or("not deployed")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Tells the notifiers what a recorded round came to.
fn notify(
    gw: &Gateway,
    row: &ManagedCertificate,
    next: &ManagedCertificate,
    outcome: &Result<Done, Failure>,
) {
    let critical = next.failures >= ESCALATE_AFTER;
    let tail = if critical {
        format!(
            "; {} consecutive failures: the certificate is not being renewed, act before it expires",
            next.failures
        )
    } else {
        "; will retry".to_owned()
    };
    match outcome {
        // A new certificate reached the targets (issued by this round or by the one whose
        // deployment it finished).
        Ok(done) if row.deployed_serial.as_deref() != Some(done.cert.serial.as_str()) => {
            let replaced = row.deployed_serial.as_deref();
            super::notify::managed_renewed(gw, &row.name, &done.cert, replaced);
        }
        Ok(_) => {}
        Err(Failure::Renewal(error)) => super::notify::managed_failed(
            gw,
            None,
            format!(
                "renewal of managed certificate {} failed (attempt {}): {error}{tail}",
                row.name, next.failures
            ),
            critical,
        ),
        Err(Failure::Deployment { cert, reports }) => super::notify::managed_failed(
            gw,
            Some(cert),
            format!(
                "deployment of managed certificate {} ({}) failed (attempt {}): {}{tail}",
                row.name,
                cert.serial,
                next.failures,
                failed_targets(reports)
            ),
            critical,
        ),
    }
}

/// The work of a round: issue (unless the current certificate still owes deployments), then
/// deploy to every target.
async fn work(gw: &Arc<Gateway>, row: &ManagedCertificate, owner: &str) -> Result<Done, Failure> {
    let owed = row
        .certificate_serial
        .as_ref()
        .filter(|serial| row.deployed_serial.as_ref() != Some(*serial));
    let current = match (owed, &row.sealed_key) {
        (Some(serial), Some(sealed)) => current(gw, row, serial, sealed).await,
        _ => None,
    };
    let (cert, key, renew_at, issued) = match current {
        Some((cert, key)) => (cert, key, row.renew_at, false),
        None => {
            let (cert, key, renew_at) = issue(gw, row, owner).await.map_err(Failure::Renewal)?;
            (cert, key, Some(renew_at), true)
        }
    };
    let reports = deploy(gw, row, &cert, key).await;
    if reports.iter().all(|r| r.deployed) {
        Ok(Done {
            cert,
            issued,
            reports,
            renew_at,
        })
    } else {
        Err(Failure::Deployment {
            cert: Box::new(cert),
            reports,
        })
    }
}

/// The current certificate `serial` and its key, opened, for a deployment still owed; `None`
/// (logged) when either cannot be had, so that the round issues anew instead of failing for
/// ever (a CA key secret changed, a certificate row gone).
async fn current(
    gw: &Gateway,
    row: &ManagedCertificate,
    serial: &str,
    sealed: &str,
) -> Option<(Certificate, Option<String>)> {
    let wanted = serial.to_owned();
    let cert = match gw.db(move |s| s.certificate_by_serial(&wanted)).await {
        Ok(cert) => cert,
        Err(e) => {
            tracing::warn!(managed = %row.name, %serial, error = %e, "cannot read the current certificate; issuing anew");
            return None;
        }
    };
    match open_key(gw, &row.name, serial, sealed) {
        Ok(key) => Some((cert, key)),
        Err(e) => {
            tracing::warn!(managed = %row.name, %serial, error = %e, "cannot open the current key; issuing anew");
            None
        }
    }
}

/// Deploys `cert` with its key to each of the row's targets, one attempt each.
async fn deploy(
    gw: &Gateway,
    row: &ManagedCertificate,
    cert: &Certificate,
    key: Option<String>,
) -> Vec<Report> {
    let targets: Vec<String> = serde_json::from_str(&row.targets).unwrap_or_default();
    let mut reports = Vec::with_capacity(targets.len());
    for name in &targets {
        let report = match gw.targets.iter().find(|t| &t.name == name) {
            Some(target) => super::deploy::deploy_once(gw, target, cert, key.clone()).await,
            None => Report {
                target: name.clone(),
                deployer: String::new(),
                deployed: false,
                attempts: 1,
                receipt: None,
                verified: None,
                error: Some(format!("target {name:?} is not configured")),
            },
        };
        reports.push(report);
    }
    reports
}

/// The associated data a sealed key is bound to: its row and certificate, so that a key
/// copied to another row or paired with another certificate does not open.
fn key_aad(name: &str, serial: &str) -> Vec<u8> {
    [name.as_bytes(), b"\0", serial.as_bytes()].concat()
}

fn open_key(
    gw: &Gateway,
    name: &str,
    serial: &str,
    sealed: &str,
) -> Result<Option<String>, String> {
    let what = format!("the key of managed certificate {name:?}");
    let pkcs8 = crate::ca::open_at_rest(&gw.managed_key, &key_aad(name, serial), sealed, &what)
        .map_err(|e| e.to_string())?;
    Ok(Some(crate::ca::pem("PRIVATE KEY", pkcs8.as_slice())))
}

/// Generates a key, issues a certificate for the row's names under its profile, and stores
/// both (the key sealed) as the row's current certificate, due for renewal at its renewal
/// point. Returns the certificate, the key (PEM) for its deployment and the renewal time.
async fn issue(
    gw: &Arc<Gateway>,
    row: &ManagedCertificate,
    owner: &str,
) -> Result<(Certificate, Option<String>, i64), String> {
    let names: Vec<String> = serde_json::from_str(&row.names).unwrap_or_default();
    let (ip_addrs, dns_names): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| n.parse::<IpAddr>().is_ok());
    let request = GenerateRequest {
        common_name: None,
        dns_names: dns_names.into_iter().cloned().collect(),
        ip_addrs: ip_addrs.iter().filter_map(|n| n.parse().ok()).collect(),
        profile: Some(row.profile.clone()),
        key_type: Some(row.key_type.clone()),
    };
    let profile = admin_issuance::profile(gw, Some(&row.profile)).map_err(|e| e.to_string())?;
    let (key, csr_der) = tokio::task::spawn_blocking(move || admin_issuance::key_and_csr(&request))
        .await
        .map_err(|e| format!("key generation task failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let csr = crate::ca::parse_csr(&csr_der).map_err(|e| e.to_string())?;
    let cert = admin_issuance::issue_certificate(gw, csr, &profile, ORIGIN_MANAGED)
        .await
        .map_err(|e: AdminIssueError| e.to_string())?;
    let received = gw.now();
    // The serial as the certificate's certID carries it, so that the window is the one
    // renewalInfo answers for this certificate.
    let serial_der = super::revocation::leaf_der(&cert.chain_pem)
        .and_then(|der| crate::acme::renewal::CertId::of_certificate(&der))
        .map(|id| id.serial)
        .unwrap_or_default();
    let renew_at = received
        + renewal_offset(
            cert.not_before,
            cert.not_after,
            &serial_der,
            row.renew_at_percent,
        );
    let sealed = crate::ca::seal_at_rest(
        &gw.managed_key,
        &key_aad(&row.name, &cert.serial),
        key.pkcs8_der(),
    )
    .map_err(|e| e.to_string())?;
    let (name, who, stored) = (row.name.clone(), owner.to_owned(), cert.clone());
    gw.db(move |s| s.store_managed_certificate(&name, &who, &stored, &sealed, renew_at, received))
        .await
        .map_err(|e| format!("the certificate could not be stored: {e}"))?;
    Ok((cert, Some(key.pkcs8_pem()), renew_at))
}

/// Why an admin's change to a managed certificate was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagedError {
    /// The definition does not hold (names the key and value).
    #[error("{0}")]
    BadRequest(String),
    /// The change contradicts the configuration (a declared certificate deleted).
    #[error("{0}")]
    Conflict(String),
    /// The store failed, or has no such certificate (`StoreError::NotFound`), or the name is
    /// taken (`StoreError::Conflict`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a managed certificate an admin declared, as `actor`; it is due at once.
pub async fn create(
    gw: &Gateway,
    spec: ManagedConfig,
    actor: &str,
) -> Result<ManagedCertificate, ManagedError> {
    let profiles: Vec<&str> = gw.profiles.iter().map(|p| p.name.as_str()).collect();
    let targets: Vec<&str> = gw.targets.iter().map(|t| t.name.as_str()).collect();
    spec.check(&profiles, &targets)
        .map_err(ManagedError::BadRequest)?;
    let row = new_row(gw, &spec, false, gw.now());
    let stored = row.clone();
    gw.db_as(actor, move |s| s.create_managed(&stored)).await?;
    Ok(row)
}

/// Every managed certificate, by name.
pub async fn list(gw: &Gateway) -> Result<Vec<ManagedCertificate>, StoreError> {
    gw.db(|s| s.managed_certificates()).await
}

/// Managed certificate `name`.
pub async fn get(gw: &Gateway, name: &str) -> Result<ManagedCertificate, StoreError> {
    let name = name.to_owned();
    gw.db(move |s| s.managed_certificate(&name)).await
}

/// Deletes managed certificate `name`, as `actor`: the gateway stops renewing it (its
/// certificates stay, valid, until they expire or are revoked). One declared in the config
/// file is refused: the next start would declare it again.
pub async fn delete(gw: &Gateway, name: &str, actor: &str) -> Result<(), ManagedError> {
    if get(gw, name).await?.declared {
        return Err(ManagedError::Conflict(format!(
            "managed certificate {name:?} is declared in the config file ([[managed]]): remove              it there, or pause it"
        )));
    }
    let name = name.to_owned();
    gw.db_as(actor, move |s| s.delete_managed(&name)).await?;
    Ok(())
}

/// Renews managed certificate `name` now, as `actor`: due at once, issued anew (also when it
/// is paused: then on resume).
pub async fn renew_now(gw: &Gateway, name: &str, actor: &str) -> Result<(), StoreError> {
    let (name, now) = (name.to_owned(), gw.now());
    gw.db_as(actor, move |s| s.renew_managed_now(&name, now))
        .await
}

/// Pauses (or resumes) managed certificate `name`, as `actor`: a paused one is neither renewed
/// nor deployed; resumed, it is due at its renewal time, at once if that passed meanwhile.
/// Returns whether the state changed.
pub async fn set_paused(
    gw: &Gateway,
    name: &str,
    paused: bool,
    actor: &str,
) -> Result<bool, StoreError> {
    let state = if paused {
        crate::store::MANAGED_PAUSED
    } else {
        MANAGED_ACTIVE
    };
    let (name, now) = (name.to_owned(), gw.now());
    gw.db_as(actor, move |s| s.set_managed_state(&name, state, now))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_falls_at_the_percentage_or_inside_the_ari_window() {
        let (nb, na) = (1_000, 1_000 + 3_600);
        assert_eq!(renewal_offset(nb, na, b"\x01", Some(50)), 1_800);
        assert_eq!(
            renewal_offset(nb, na, b"\x01", Some(200)),
            3_564,
            "clamped to 99 %"
        );
        let window = default_window(nb, na, b"\x01");
        let ari = nb + renewal_offset(nb, na, b"\x01", None);
        assert!(
            window.start <= ari && ari <= window.end,
            "{ari} in {window:?}"
        );
        assert!(
            ari > nb + 3_600 * 2 / 3,
            "in the last third of the lifetime"
        );
        assert_ne!(
            renewal_offset(nb, na, b"\x01", None),
            renewal_offset(nb, na, b"\x02\x03", None),
            "spread by serial"
        );
    }
}
