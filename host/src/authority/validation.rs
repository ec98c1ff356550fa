//! Durable validation (RFC 8555 §7.5.1): a client's response to a challenge becomes a job that
//! carries the challenge from `processing` to `valid` or `invalid`, whatever happens to the
//! process that started it.
//!
//! Responding moves the challenge to `processing` and queues its job in one transaction, leased
//! to this process, then validates at once in the background; the client polls. While it works,
//! the process renews its lease. If the process dies, the job outlives it: a restarted process
//! takes its own jobs back at start (it knows its earlier leases by the name kept in its data
//! directory, see [`crate::instance`]), and any other process sharing the database takes over
//! a job whose lease has run out. A validation is repeated from the start, which is safe: it
//! only reads what the client published. A job cut short [`MAX_ATTEMPTS`] times fails its
//! challenge with a problem that says so, so a challenge that crashes its validator cannot
//! keep a replica busy forever.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::acme::{
    ChallengeStatus, ChallengeType, Identifier, IdentifierType, OrderStatus, Problem,
};
use crate::authority::leases::{spawn_claiming, Pace};
use crate::authority::Gateway;
use crate::jws::key_authorization;
use crate::plugins::{ValidationOutcome, ValidatorPlugin};
use crate::store::{Authorization, Challenge, Recorded, StoreError, ValidationJob};
use crate::va::ValidationRequest;

/// How long a process owns a validation it works on without renewing; after a crash, how long
/// another process waits before taking the validation over.
const LEASE: Duration = Duration::from_secs(30);
/// How often a running validation renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// Attempts started (including ones a crash cut short) before the challenge is failed.
pub const MAX_ATTEMPTS: i32 = 3;
/// How often the worker looks for abandoned validations.
const POLL: Duration = Duration::from_secs(1);
/// Jobs claimed per round.
const CLAIM_BATCH: i64 = 32;

fn lease_until(t: i64) -> i64 {
    t + i64::try_from(LEASE.as_secs()).unwrap_or(30)
}

/// The identifier an authorization is for.
pub fn identifier(a: &Authorization) -> Result<Identifier, Problem> {
    let kind: IdentifierType = a
        .identifier_type
        .parse()
        .map_err(Problem::server_internal)?;
    Ok(Identifier {
        kind,
        value: a.identifier_value.clone(),
    })
}

/// Counts in the metrics what recording a validation outcome of a `kind` challenge changed.
fn count_recorded(gw: &Gateway, kind: &str, valid: bool, recorded: Recorded) {
    if let Recorded::Decided { order_ready } = recorded {
        gw.metrics.validation(kind, valid);
        if order_ready {
            gw.metrics.order(OrderStatus::Ready.as_str());
        }
    }
}

/// Starts validating `challenge` (pending, of a pending authorization) for its client, and
/// returns the challenge as it now stands: `processing`, or `valid` at once when the operator
/// turned validation off (`acme.auto_approve`). A second response to a challenge already
/// under way changes nothing.
pub async fn respond(gw: &Arc<Gateway>, challenge: Challenge) -> Result<Challenge, Problem> {
    let configured = gw.challenge_plugins.contains_key(&challenge.kind)
        || challenge.kind.parse::<ChallengeType>().is_ok();
    if !configured {
        return Err(Problem::server_internal(format!(
            "challenge type {} is no longer configured",
            challenge.kind
        )));
    }
    let store_problem = |e| crate::authority::store_problem(e, "challenge");
    if gw.config.acme.auto_approve {
        // DANGER mode (config `acme.auto_approve`): no check at all.
        let (id, at) = (challenge.id.clone(), gw.now());
        let recorded = gw
            .write(move |s| s.record_validation(&id, true, Some(at), None))
            .await
            .map_err(store_problem)?;
        count_recorded(gw, &challenge.kind, true, recorded);
        return Ok(Challenge {
            status: ChallengeStatus::Valid,
            validated: Some(at),
            ..challenge
        });
    }
    let t = gw.now();
    let job = ValidationJob {
        challenge_id: challenge.id.clone(),
        attempts: 1,
        lease_owner: Some(gw.issuance.owner().to_owned()),
        lease_until: lease_until(t),
        created_at: t,
    };
    let queued = job.clone();
    if gw
        .write(move |s| s.begin_validation(&queued))
        .await
        .map_err(store_problem)?
    {
        tokio::spawn(attempt(gw.clone(), job));
    }
    Ok(Challenge {
        status: ChallengeStatus::Processing,
        ..challenge
    })
}

/// One attempt at a leased job: validate (renewing the lease meanwhile), then record the
/// outcome. A job past [`MAX_ATTEMPTS`] is failed without trying again.
async fn attempt(gw: Arc<Gateway>, job: ValidationJob) {
    let id = job.challenge_id.clone();
    let outcome = if job.attempts > MAX_ATTEMPTS {
        Err(Problem::server_internal(format!(
            "validation was interrupted {} times (the gateway stopped while validating); \
             respond to a new challenge",
            job.attempts - 1
        )))
    } else {
        let renewing = tokio::spawn(renew_lease(gw.clone(), id.clone()));
        let outcome = decide(&gw, &id).await;
        renewing.abort();
        outcome
    };
    if let Err(e) = record(&gw, &id, outcome).await {
        // The job stays: its lease runs out and it is taken up again.
        tracing::error!(challenge = %id, error = %e, "failed to record the validation outcome");
    }
}

/// Keeps this process's lease on the job alive until aborted.
async fn renew_lease(gw: Arc<Gateway>, challenge_id: String) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let (id, owner, until) = (
            challenge_id.clone(),
            gw.issuance.owner().to_owned(),
            lease_until(gw.now()),
        );
        match gw
            .db(move |s| s.renew_validation_lease(&id, &owner, until))
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(challenge = %challenge_id, error = %e, "could not renew a validation lease")
            }
        }
    }
}

/// Validates the stored challenge `challenge_id`: the built-in check of its type, or the
/// validator plugin the operator mapped to the type.
async fn decide(gw: &Arc<Gateway>, challenge_id: &str) -> Result<(), Problem> {
    let cid = challenge_id.to_owned();
    let (challenge, authz, account) = gw
        .db(move |s| {
            let (challenge, authz) = s.challenge_with_authorization(&cid)?;
            let account = s.account(&authz.account_id)?;
            Ok((challenge, authz, account))
        })
        .await
        .map_err(|e| crate::authority::store_problem(e, "challenge"))?;
    let identifier = identifier(&authz)?;
    let key_authorization = key_authorization(&challenge.token, &account.jwk_thumbprint);
    let account_uri = gw.account_url(&account.id);
    if let Some(plugin) = gw.challenge_plugins.get(&challenge.kind) {
        let deadline = Duration::from_secs(gw.config.validation.timeout_seconds.max(1));
        return plugin_decision(
            plugin,
            &identifier,
            &account_uri,
            &challenge.kind,
            &challenge.token,
            &key_authorization,
            deadline,
        )
        .await;
    }
    let kind: ChallengeType = challenge.kind.parse().map_err(|_| {
        Problem::server_internal(format!(
            "challenge type {} is no longer configured",
            challenge.kind
        ))
    })?;
    gw.va
        .validate(&ValidationRequest {
            identifier,
            wildcard: authz.wildcard,
            challenge: kind,
            token: challenge.token,
            key_authorization,
            account_uri,
        })
        .await
}

/// Records the outcome on the challenge (with the identifier in the problem, §7.1.3).
async fn record(
    gw: &Gateway,
    challenge_id: &str,
    outcome: Result<(), Problem>,
) -> Result<(), StoreError> {
    let cid = challenge_id.to_owned();
    let (challenge, authz) = gw.db(move |s| s.challenge_with_authorization(&cid)).await?;
    let identifier = identifier(&authz).ok();
    let valid = outcome.is_ok();
    let error = outcome.as_ref().err().map(|p| {
        let p = p.clone();
        match &identifier {
            Some(i) => p.with_identifier(i.clone()),
            None => p,
        }
        .to_json()
    });
    let at = valid.then(|| gw.now());
    let id = challenge_id.to_owned();
    let recorded = gw
        .write(move |s| s.record_validation(&id, valid, at, error.as_deref()))
        .await?;
    count_recorded(gw, &challenge.kind, valid, recorded);
    if recorded != Recorded::AlreadyDecided {
        tracing::info!(challenge = %challenge_id, identifier = ?identifier.map(|i| i.to_string()), kind = %challenge.kind, valid, problem = ?outcome.err().map(|p| p.to_string()), "validation finished");
    }
    Ok(())
}

/// Asks a validator plugin, honouring its "retry later" within `deadline`. A plugin fault
/// (trap, timeout, quarantine) fails the challenge with a problem that says so; the gateway
/// and other requests go on.
async fn plugin_decision(
    plugin: &ValidatorPlugin,
    identifier: &Identifier,
    account: &str,
    kind: &str,
    token: &str,
    key_authorization: &str,
    deadline: Duration,
) -> Result<(), Problem> {
    let started = std::time::Instant::now();
    loop {
        match plugin
            .validate(identifier, account, kind, token, key_authorization)
            .await
        {
            Ok(ValidationOutcome::Valid) => return Ok(()),
            Ok(ValidationOutcome::Invalid(problem)) => return Err(problem),
            Ok(ValidationOutcome::RetryLater(wait)) => {
                let wait = wait.max(Duration::from_millis(100));
                if started.elapsed() + wait > deadline {
                    return Err(Problem::server_internal(format!(
                        "validator {} was still undecided after {}s",
                        plugin.info().name,
                        deadline.as_secs()
                    )));
                }
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "validator plugin failed");
                return Err(Problem::server_internal(format!(
                    "the validator could not decide: {e}"
                )));
            }
        }
    }
}

/// Runs the worker that takes over abandoned validations (of a process that died) until
/// `stop` turns true.
pub fn spawn_worker(gw: Arc<Gateway>, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let pace = Pace {
        what: "interrupted validations",
        poll: POLL,
        lease_seconds: i64::try_from(LEASE.as_secs()).unwrap_or(30),
        batch: CLAIM_BATCH,
    };
    spawn_claiming(
        gw,
        stop,
        pace,
        |s, owner, t, until, batch| s.claim_abandoned_validations(owner, t, until, batch),
        |gw, job| {
            tracing::info!(challenge = %job.challenge_id, attempt = job.attempts, "resuming an interrupted validation");
            attempt(gw, job)
        },
    )
}
