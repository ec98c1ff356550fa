//! Issuance (RFC 8555 §7.4): finalize hands a ready order and its CSR to the issuer of the
//! order's profile.
//!
//! The built-in CA signs in the finalize request itself, and its certificate is stored in the
//! transaction that makes the order `valid`: no job, one commit. For any other issuer finalize
//! queues a durable job in the transaction that makes the order `processing`, then works on it
//! at once and answers with the final order when the issuer is quick. When the issuer is slow,
//! defers (`Pending`) or fails transiently, finalize answers `processing` with Retry-After and
//! a background worker carries on: it polls pending requests, retries failures with backoff
//! ([`RetryPolicy`]) and, when the policy gives up, makes the order `invalid` with the issuer's
//! error in the problem detail. With `issuance.inline_wait_ms = 0` every issuer, the built-in
//! CA too, takes the job's way and finalize always answers `processing`.
//!
//! Crash safety: a job is leased by the process working on it. If that process dies, the lease
//! runs out and another process (or the next start) takes the job over. Storing a certificate
//! and making the order `valid` is one compare-and-set transaction, so an order never gets two
//! certificates, and a request the issuer accepted (it returned a handle) is polled, not sent
//! again.

mod issuer;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use tokio::sync::{watch, Notify, Semaphore};

pub use issuer::{IssueError, IssueOutcome, IssueRequest, IssuedChain, Issuer, RevokeRequest};
pub use retry::{Next, RetryPolicy};

use crate::acme::{Identifier, IdentifierType, Problem};
use crate::authority::{acme_actor, store_problem, Gateway};
pub use crate::config::IssuanceConfig;
use crate::store::{Certificate, IssuanceJob, Order, StoreError};

/// The worker's longest sleep: a job queued by another replica is noticed within this time.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The worker's sleep while all its slots are busy.
const BUSY_POLL: Duration = Duration::from_millis(200);
/// Jobs claimed per round.
const CLAIM_BATCH: i64 = 32;

/// Per-process issuance state: who this process is (lease owner) and the worker's doorbell.
#[derive(Debug)]
pub struct Queue {
    instance: crate::instance::Instance,
    wake: Notify,
}

impl Queue {
    pub fn new(instance: crate::instance::Instance) -> Queue {
        Queue {
            instance,
            wake: Notify::new(),
        }
    }

    /// This process's lease owner name (for validation jobs too).
    pub fn owner(&self) -> &str {
        &self.instance.owner
    }
}

/// Where an order stands after an attempt.
#[derive(Debug)]
pub enum Settled {
    Valid(Certificate),
    Invalid(Problem),
    /// Still `processing`: pending at the issuer, or to be retried.
    Processing,
}

/// The job finalize queues for an order, leased to this process.
pub fn new_job(gw: &Gateway, order_id: &str, issuer: &str, csr_der: &[u8]) -> IssuanceJob {
    let t = gw.now();
    IssuanceJob {
        order_id: order_id.to_owned(),
        issuer: issuer.to_owned(),
        csr: B64.encode(csr_der),
        attempts: 0,
        next_attempt_at: t,
        handle: None,
        lease_owner: Some(gw.issuance.owner().to_owned()),
        lease_until: t + gw.config.issuance.lease_seconds.max(1),
        last_error: None,
        created_at: t,
    }
}

/// Hands the `ready` order (as finalize read it) with its checked CSR (`csr_der`) to `issuer`.
///
/// The built-in CA signs in microseconds: its certificate is stored and the order made `valid`
/// in one transaction ([`at_once`]), with no job and no `processing` in between. Every other
/// issuer gets a durable job, queued in the transaction that makes the order `processing`,
/// and finalize waits up to `inline_wait_ms` for the outcome; if the issuer takes longer the
/// attempt goes on in the background and the caller answers `processing`. A wait of zero
/// always answers `processing`, however fast the issuer is, so clients see the same
/// asynchronous flow every time.
pub async fn finalize(
    gw: &Arc<Gateway>,
    order: Order,
    issuer: &str,
    csr_der: Vec<u8>,
) -> Result<Settled, Problem> {
    let wait = Duration::from_millis(gw.config.issuance.inline_wait_ms);
    if !wait.is_zero() {
        if let Some(settled) = at_once(gw, &order, issuer, &csr_der).await? {
            return Ok(settled);
        }
    }
    let job = new_job(gw, &order.id, issuer, &csr_der);
    let queued = job.clone();
    let moved = gw
        .write_as(&acme_actor(&order.account_id), move |s| {
            s.begin_issuance(&queued)
        })
        .await
        .map_err(|e| store_problem(e, "order"))?;
    if !moved {
        return Err(already_finalizing());
    }
    let task = tokio::spawn(attempt(gw.clone(), job, Some(order)));
    if wait.is_zero() {
        return Ok(Settled::Processing);
    }
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(settled)) => settled.map_err(|e| store_problem(e, "order")),
        Ok(Err(e)) => Err(Problem::server_internal(format!(
            "issuance task failed: {e}"
        ))),
        Err(_) => Ok(Settled::Processing),
    }
}

fn already_finalizing() -> Problem {
    Problem::order_not_ready("order is already being finalized")
}

/// Issues `order` in the finalize request itself when its issuer is the built-in CA: signs,
/// then stores the certificate and makes the order `valid` in one write (one commit, where the
/// job's way takes two; no job row to insert and delete, one audit entry fewer). `None` when the issuer is another or the
/// CA did not sign: the caller then takes the job's way, whose retries and failure handling
/// apply as for any issuer. Signing comes before the order's compare-and-set, so of two
/// finalize requests racing for one order both may sign; one certificate is stored, the
/// other never leaves the process.
async fn at_once(
    gw: &Arc<Gateway>,
    order: &Order,
    issuer: &str,
    csr_der: &[u8],
) -> Result<Option<Settled>, Problem> {
    if !matches!(gw.issuer(issuer), Some(Issuer::Builtin(_))) {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let Ok((ca, request)) = prepare(gw, order, issuer, csr_der) else {
        return Ok(None);
    };
    let Ok(IssueOutcome::Issued(chain)) = ca.issue(request).await else {
        return Ok(None);
    };
    let cert = order_certificate(order, issuer, chain);
    let deployments = crate::authority::deploy::owed(gw, &cert, false);
    let (row, jobs) = (cert.clone(), deployments.clone());
    match gw
        .write_as(&acme_actor(&order.account_id), move |s| {
            s.issue_ready_order(&row, &jobs)
        })
        .await
    {
        Ok(()) => Ok(Some(issued(gw, cert, deployments, started).await)),
        Err(StoreError::Conflict(_)) => Err(already_finalizing()),
        Err(e) => Err(store_problem(e, "order")),
    }
}

/// The stored form of `chain`, issued by `issuer` for `order`.
fn order_certificate(order: &Order, issuer: &str, chain: IssuedChain) -> Certificate {
    Certificate {
        account_id: Some(order.account_id.clone()),
        order_id: Some(order.id.clone()),
        ..chain.into_certificate(
            issuer,
            crate::store::ORIGIN_ACME,
            order.identifiers.clone(),
            String::new(),
        )
    }
}

/// What follows a stored certificate, whichever way it was issued: metrics, the `issued`
/// notice and its deployments.
async fn issued(
    gw: &Arc<Gateway>,
    cert: Certificate,
    deployments: Vec<crate::store::DeploymentJob>,
    started: std::time::Instant,
) -> Settled {
    gw.metrics.issuance(started.elapsed());
    gw.metrics.order("valid");
    crate::authority::notify::issued(gw, &cert).await;
    crate::authority::deploy::start(gw, deployments, None);
    tracing::info!(order = cert.order_id.as_deref().unwrap_or_default(), serial = %cert.serial, issuer = %cert.issuer, "certificate issued");
    Settled::Valid(cert)
}

/// One attempt at a leased job: issue (or poll), then record the outcome. `order` is the
/// job's order when the caller has just read it (finalize); a claimed job reads it here.
async fn attempt(
    gw: Arc<Gateway>,
    job: IssuanceJob,
    order: Option<Order>,
) -> Result<Settled, StoreError> {
    let order = match order {
        Some(order) => order,
        None => {
            let oid = job.order_id.clone();
            gw.read(move |s| s.order(&oid)).await?
        }
    };
    let started = std::time::Instant::now();
    let outcome = match B64
        .decode(&job.csr)
        .map_err(|e| Problem::server_internal(format!("stored CSR unreadable: {e}")))
        .and_then(|der| prepare(&gw, &order, &job.issuer, &der))
    {
        Err(problem) => Err(IssueError::Rejected(problem)),
        Ok((issuer, request)) => match &job.handle {
            Some(handle) => issuer.poll(handle, &request).await,
            None => issuer.issue(request).await,
        },
    };
    match outcome {
        Ok(IssueOutcome::Issued(chain)) => {
            let cert = order_certificate(&order, &job.issuer, chain);
            let row = cert.clone();
            let deployments = crate::authority::deploy::owed(&gw, &cert, false);
            let jobs = deployments.clone();
            match gw.write(move |s| s.insert_certificate(&row, &jobs)).await {
                Ok(()) => {}
                // Another process finished this order first (our lease had run out).
                Err(StoreError::Conflict(detail)) => {
                    tracing::warn!(order = %order.id, %detail, "issued certificate discarded: the order was settled elsewhere");
                    return Ok(Settled::Processing);
                }
                Err(e) => return Err(e),
            }
            Ok(issued(&gw, cert, deployments, started).await)
        }
        Ok(IssueOutcome::Pending {
            handle,
            retry_after,
        }) => {
            let next = IssuanceJob {
                handle: Some(handle),
                next_attempt_at: gw.now() + i64::from(retry_after.max(1)),
                ..job
            };
            gw.db(move |s| s.reschedule_job(&next)).await?;
            gw.issuance.wake.notify_one();
            Ok(Settled::Processing)
        }
        Err(IssueError::Rejected(problem)) => give_up(&gw, &job, problem).await,
        Err(error) => {
            let attempts = u32::try_from(job.attempts).unwrap_or(0) + 1;
            let hint = match &error {
                IssueError::Unavailable { retry_after, .. } => *retry_after,
                _ => None,
            };
            let t = gw.now();
            match gw
                .config
                .issuance
                .retry
                .after_failure(attempts, job.created_at, t, hint)
            {
                Next::GiveUp => {
                    let problem = Problem::server_internal(format!(
                        "issuer {:?} failed {attempts} time(s), giving up: {error}",
                        job.issuer
                    ));
                    give_up(&gw, &job, problem).await
                }
                Next::RetryAt(at) => {
                    tracing::warn!(order = %job.order_id, issuer = %job.issuer, attempts, retry_in = at - t, %error, "issuance failed; will retry");
                    let next = IssuanceJob {
                        attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
                        next_attempt_at: at,
                        last_error: Some(error.to_string()),
                        ..job
                    };
                    gw.db(move |s| s.reschedule_job(&next)).await?;
                    gw.issuance.wake.notify_one();
                    Ok(Settled::Processing)
                }
            }
        }
    }
}

async fn give_up(gw: &Gateway, job: &IssuanceJob, problem: Problem) -> Result<Settled, StoreError> {
    let (oid, json) = (job.order_id.clone(), problem.to_json());
    if gw.db(move |s| s.fail_issuance(&oid, &json)).await? {
        gw.metrics.order("invalid");
        crate::authority::notify::failed(gw, &job.order_id, &problem.detail);
        tracing::warn!(order = %job.order_id, issuer = %job.issuer, %problem, "issuance failed for good");
    }
    Ok(Settled::Invalid(problem))
}

/// The issuer named `issuer` and its request for `order`'s CSR (`csr_der`, checked at
/// finalize). A problem here (profile or issuer gone from the configuration, unreadable CSR)
/// is final.
fn prepare(
    gw: &Gateway,
    order: &crate::store::Order,
    issuer: &str,
    csr_der: &[u8],
) -> Result<(Issuer, IssueRequest), Problem> {
    let issuer = gw.issuer(issuer).ok_or_else(|| {
        Problem::server_internal(format!("issuer {issuer:?} is no longer configured"))
    })?;
    let profile = gw.profile(&order.profile).cloned().ok_or_else(|| {
        Problem::server_internal(format!(
            "profile {:?} is no longer configured",
            order.profile
        ))
    })?;
    // Verified at finalize (`orders::check_csr`), the only place jobs are made from.
    let csr = crate::ca::parse_stored_csr(csr_der).map_err(crate::authority::ca_problem)?;
    let identifiers: Vec<Identifier> = serde_json::from_str(&order.identifiers)
        .map_err(|e| Problem::server_internal(format!("stored identifiers unreadable: {e}")))?;
    let dns_names = identifiers
        .iter()
        .filter(|i| i.kind == IdentifierType::Dns)
        .map(|i| i.value.clone())
        .collect();
    let ip_addrs = identifiers
        .iter()
        .filter(|i| i.kind == IdentifierType::Ip)
        .filter_map(|i| i.value.parse().ok())
        .collect();
    Ok((
        issuer,
        IssueRequest {
            csr,
            dns_names,
            ip_addrs,
            profile,
            order_url: gw.order_url(&order.id),
            account_url: gw.account_url(&order.account_id),
        },
    ))
}

/// Runs the background worker until `stop` turns true: claims due jobs (this process's
/// retries, pending polls, and jobs whose owner died) and attempts each, `workers` at a time.
pub fn spawn_worker(
    gw: Arc<Gateway>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(gw.config.issuance.workers.max(1)));
        loop {
            let sleep = match claim_and_run(&gw, &slots).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "issuance worker cannot read its jobs");
                    IDLE_POLL
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = gw.issuance.wake.notified() => {}
                _ = stop.changed() => break,
            }
        }
    })
}

/// One round: claims what is due and starts it; returns how long to sleep before the next.
async fn claim_and_run(gw: &Arc<Gateway>, slots: &Arc<Semaphore>) -> Result<Duration, StoreError> {
    let free = i64::try_from(slots.available_permits())
        .unwrap_or(0)
        .min(CLAIM_BATCH);
    if free == 0 {
        // Every slot busy: look again shortly (a finishing attempt does not ring the bell).
        return Ok(BUSY_POLL);
    }
    {
        let (owner, lease) = (
            gw.issuance.owner().to_owned(),
            gw.config.issuance.lease_seconds.max(1),
        );
        let t = gw.now();
        let jobs = gw
            .db(move |s| s.claim_due_jobs(&owner, t, t + lease, free))
            .await?;
        for job in jobs {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let gw = gw.clone();
            tokio::spawn(async move {
                let order = job.order_id.clone();
                if let Err(e) = attempt(gw, job, None).await {
                    tracing::error!(%order, error = %e, "issuance attempt could not be recorded");
                }
                drop(permit);
            });
        }
    }
    let t = gw.now();
    let next = gw.db(move |s| s.next_job_due(t)).await?;
    Ok(match next {
        Some(at) => {
            let secs = u64::try_from(at - gw.now()).unwrap_or(0);
            Duration::from_secs(secs).min(IDLE_POLL)
        }
        None => IDLE_POLL,
    })
}
