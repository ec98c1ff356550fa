//! Deploying issued certificates to the operator's targets (`[[targets]]`) through target
//! deployer plugins.
//!
//! A target names a `target-deployer` plugin, the names it serves and its own `config` (where
//! and how to deploy, handed to the plugin with every call, so one deployer serves many
//! targets). A certificate whose every identifier is covered by a target's patterns is owed a
//! deployment there: a durable job (`deployment_jobs`) stored in the transaction that stores
//! the certificate, so a process that dies after issuing still owes it and any replica (or the
//! next start) delivers it. The issuing process attempts at once, in the background, so a slow
//! target never delays the ACME client; a deploy error, a fault, or a verify that does not find
//! the certificate is retried with a doubling backoff by whichever process holds the job,
//! except an error the deployer calls permanent (`plugin-error.permanent`, e.g. a target whose
//! configuration it cannot use), which fails the deployment at once.
//! The outcome (deployed with the plugin's receipt, or failed after the target's last attempt)
//! is audited in the transaction that deletes the job, and a failure is reported to the
//! notifiers as `failed`.
//!
//! Private keys reach a deployer only for certificates whose key the gateway generated (admin
//! `generate`), straight from memory: they are never stored. Such a job stays with the process
//! that holds the key; if that process dies first, the job fails (audited and notified) saying
//! the key is gone, and the operator generates a new certificate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::acme::name_policy::{self, NamePattern};
use crate::acme::Identifier;
use crate::authority::leases::{spawn_claiming, Pace};
use crate::authority::Gateway;
pub use crate::config::TargetConfig;
use crate::plugins::{DeployerPlugin, Deployment, PluginError, VerifyOutcome};
use crate::store::{Certificate, DeploymentJob, Event, ORIGIN_IDENTITY};

/// Pause before the second attempt, doubled for each further one: a target that is
/// restarting gets seconds, one that is down gets the operator's attention (the `failed`
/// notice) within a minute or two rather than never.
pub const RETRY_BASE: Duration = Duration::from_secs(2);

/// A configured target with its deployer loaded.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub deployer_name: String,
    pub deployer: DeployerPlugin,
    /// The target's `config` as JSON.
    pub config: String,
    pub names: Vec<NamePattern>,
    pub verify: bool,
    pub attempts: u32,
}

impl Target {
    /// `config` with its deployer; `Err` says what is wrong with the entry.
    pub fn new(config: &TargetConfig, deployer: DeployerPlugin) -> Result<Self, String> {
        let names = name_policy::parse_all(&config.names)
            .map_err(|e| format!("target {:?}: {e}", config.name))?;
        if config.attempts == 0 {
            return Err(format!(
                "target {:?}: attempts must be at least 1",
                config.name
            ));
        }
        let json = serde_json::to_string(&config.config)
            .map_err(|e| format!("target {:?}: config is not JSON-able: {e}", config.name))?;
        Ok(Self {
            name: config.name.clone(),
            deployer_name: config.deployer.clone(),
            deployer,
            config: json,
            names,
            verify: config.verify,
            attempts: config.attempts,
        })
    }

    /// Whether a certificate for `identifiers` belongs on this target: each of them matches
    /// a pattern, so a target never receives a certificate that carries names it does not
    /// serve.
    pub fn covers(&self, identifiers: &[Identifier]) -> bool {
        covers(&self.names, identifiers)
    }
}

fn covers(patterns: &[NamePattern], identifiers: &[Identifier]) -> bool {
    patterns.is_empty()
        || (!identifiers.is_empty()
            && identifiers
                .iter()
                .all(|id| patterns.iter().any(|p| p.matches(id))))
}

/// What one deployment to one target came to.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    pub target: String,
    pub deployer: String,
    pub deployed: bool,
    pub attempts: u32,
    /// The deployer's receipt, when it deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// `deployed`, `mismatch: ...`, `missing` or `skipped` (verify off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    fn new(target: &str, deployer: &str) -> Report {
        Report {
            target: target.to_owned(),
            deployer: deployer.to_owned(),
            deployed: false,
            attempts: 0,
            receipt: None,
            verified: None,
            error: None,
        }
    }

    /// Takes in the last attempt's outcome: the receipt and what verify said, or the error.
    fn settle(&mut self, outcome: Result<(String, String), String>) {
        match outcome {
            Ok((receipt, verified)) => {
                self.deployed = true;
                self.receipt = Some(receipt);
                self.verified = Some(verified);
            }
            Err(error) => self.error = Some(error),
        }
    }
}

/// The deployment of `cert` to `target`.
fn deployment(target: &Target, cert: &Certificate, private_key: Option<String>) -> Deployment {
    Deployment {
        target: target.name.clone(),
        target_config: target.config.clone(),
        identifiers: identifiers(cert),
        serial: cert.serial.clone(),
        chain: cert.chain_pem.clone(),
        private_key,
        not_after: cert.not_after,
    }
}

fn identifiers(cert: &Certificate) -> Vec<Identifier> {
    serde_json::from_str(&cert.identifiers).unwrap_or_default()
}

/// The targets a newly issued `cert` goes to. Identity certificates of the admin API are
/// never deployed.
pub fn targets_for<'a>(gw: &'a Gateway, cert: &Certificate) -> Vec<&'a Target> {
    // Most gateways have no targets; skip parsing the identifiers on every issuance then.
    if gw.targets.is_empty() || cert.origin == ORIGIN_IDENTITY {
        return Vec::new();
    }
    let ids = identifiers(cert);
    gw.targets.iter().filter(|t| t.covers(&ids)).collect()
}

/// The deployments `cert` is owed, to be stored with it, leased to this process so that it
/// attempts them first ([`start`]). `with_key`: the gateway holds the certificate's key.
pub fn owed(gw: &Gateway, cert: &Certificate, with_key: bool) -> Vec<DeploymentJob> {
    let t = gw.now();
    let lease_until = t + lease_seconds(gw);
    targets_for(gw, cert)
        .into_iter()
        .map(|target| DeploymentJob {
            certificate_id: cert.id.clone(),
            target: target.name.clone(),
            attempts: 0,
            next_attempt_at: lease_until,
            lease_owner: Some(gw.issuance.owner().to_owned()),
            lease_until,
            with_key,
            last_error: None,
            created_at: t,
        })
        .collect()
}

/// Starts the first attempt of each of `jobs` (stored with their certificate by this process)
/// in the background. `private_key` (PEM) when the gateway generated the key: kept in memory
/// until its deployments settle.
pub fn start(gw: &Arc<Gateway>, jobs: Vec<DeploymentJob>, private_key: Option<String>) {
    for job in jobs {
        if job.with_key {
            if let Some(key) = &private_key {
                gw.deployments.hold_key(&job, key.clone());
            }
        }
        let gw = gw.clone();
        tokio::spawn(async move { attempt(&gw, job).await });
    }
}

/// Deploys `cert` to `target` now, once, and records the outcome like a queued deployment's:
/// for an operator redeploying on demand, who waits for the answer.
pub async fn deploy_now(gw: &Gateway, target: &Target, cert: &Certificate) -> Report {
    let report = deploy_once(gw, target, cert, None).await;
    if !report.deployed {
        notify_failure(gw, cert, &report);
    }
    report
}

/// One deploy (and verify) of `cert` to `target`, with `private_key` (PEM) when the gateway
/// holds the certificate's key, audited; the caller decides whom to tell and whether to retry.
pub async fn deploy_once(
    gw: &Gateway,
    target: &Target,
    cert: &Certificate,
    private_key: Option<String>,
) -> Report {
    let mut report = Report::new(&target.name, &target.deployer_name);
    report.attempts = 1;
    report.settle(
        attempt_once(target, &deployment(target, cert, private_key))
            .await
            .map_err(Failure::into_message),
    );
    let event = outcome_event(cert, &report);
    if let Err(e) = gw.db(move |s| s.record(event)).await {
        tracing::error!(error = %e, "failed to record a deployment in the audit log");
    }
    report
}

/// This process's part of the deployment queue: the generated keys it holds for deployments
/// not yet settled.
#[derive(Debug, Default)]
pub struct Queue {
    keys: Mutex<HashMap<(String, String), String>>,
}

impl Queue {
    fn hold_key(&self, job: &DeploymentJob, key: String) {
        self.keys_held().insert(job_key(job), key);
    }

    fn key(&self, job: &DeploymentJob) -> Option<String> {
        self.keys_held().get(&job_key(job)).cloned()
    }

    fn forget_key(&self, job: &DeploymentJob) {
        self.keys_held().remove(&job_key(job));
    }

    fn keys_held(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        // A panic while holding the lock leaves the map usable: it only ever holds whole entries.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn job_key(job: &DeploymentJob) -> (String, String) {
    (job.certificate_id.clone(), job.target.clone())
}

/// How long a process holds a deployment it attempts; after a crash the job waits this long
/// before another process takes it over. The issuance lease: both cover a plugin call. The
/// managed certificates' worker holds its rows as long (an issuer call and a few deployer calls).
pub(super) fn lease_seconds(gw: &Gateway) -> i64 {
    gw.config.issuance.lease_seconds.max(1)
}

/// Runs the deployment worker until `stop` turns true: claims deployments that are due (this
/// process's retries, and the jobs of processes that died) and attempts each.
pub fn spawn_worker(gw: Arc<Gateway>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let pace = Pace {
        what: "deployment jobs",
        // A retry falls due, or a dead process's job is noticed, within this time.
        poll: Duration::from_secs(1),
        lease_seconds: lease_seconds(&gw),
        batch: 16,
    };
    spawn_claiming(
        gw,
        stop,
        pace,
        |s, owner, t, until, batch| s.claim_due_deployments(owner, t, until, batch),
        |gw, job| async move { attempt(&gw, job).await },
    )
}

/// Why an attempt did not deploy.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Worth another attempt if the target has any left.
    Retry(String),
    /// No attempt can succeed (the target is gone, or the key is, or the deployer said so).
    Final(String),
}

impl Failure {
    /// A deployer call's error: final when the plugin said no retry can succeed; everything
    /// else (its retryable errors, a 0.1.0 plugin's errors, faults, quarantine) is retried.
    fn of(error: PluginError) -> Failure {
        if error.is_permanent() {
            Failure::Final(error.to_string())
        } else {
            Failure::Retry(error.to_string())
        }
    }

    fn into_message(self) -> String {
        match self {
            Failure::Retry(message) | Failure::Final(message) => message,
        }
    }
}

/// One attempt at a job this process holds, then its record: settled (deployed, or failed
/// after the last attempt) or rescheduled.
async fn attempt(gw: &Arc<Gateway>, job: DeploymentJob) {
    let id = job.certificate_id.clone();
    let cert = match gw.db(move |s| s.certificate(&id)).await {
        Ok(cert) => cert,
        Err(e) => {
            // The lease runs out and the job is taken up again.
            tracing::error!(certificate = %job.certificate_id, error = %e, "cannot read a certificate to deploy");
            return;
        }
    };
    let target = gw.targets.iter().find(|t| t.name == job.target);
    let mut report = Report::new(
        &job.target,
        target.map(|t| t.deployer_name.as_str()).unwrap_or_default(),
    );
    report.attempts = u32::try_from(job.attempts).unwrap_or(0) + 1;
    let key = job.with_key.then(|| gw.deployments.key(&job)).flatten();
    let outcome = match target {
        None => Err(Failure::Final(format!(
            "target {:?} is no longer configured",
            job.target
        ))),
        Some(_) if job.with_key && key.is_none() => Err(Failure::Final(
            "the private key the gateway generated for this certificate is gone: keys are \
             never stored, and the process that held it stopped before the deployment \
             succeeded; generate a new certificate for this target"
                .into(),
        )),
        Some(target) => attempt_once(target, &deployment(target, &cert, key)).await,
    };
    let last = target.is_none_or(|t| report.attempts >= t.attempts);
    let owner = gw.issuance.owner().to_owned();
    let recorded = match outcome {
        Err(Failure::Retry(error)) if !last => {
            reschedule(gw, &job, report.attempts, &error, &owner).await
        }
        outcome => {
            report.settle(outcome.map_err(Failure::into_message));
            gw.deployments.forget_key(&job);
            let event = outcome_event(&cert, &report);
            let (id, name) = (job.certificate_id.clone(), job.target.clone());
            gw.db(move |s| s.settle_deployment(&id, &name, &owner, event))
                .await
                .map(|settled| {
                    // Told once: by the process whose record settled the job.
                    if settled && !report.deployed {
                        notify_failure(gw, &cert, &report);
                    }
                })
        }
    };
    if let Err(e) = recorded {
        tracing::error!(certificate = %job.certificate_id, target = %job.target, error = %e, "deployment attempt could not be recorded");
    }
}

/// Records failed attempt number `attempts` and when the next is due: after [`RETRY_BASE`],
/// doubled for each further attempt. A job with a key stays this process's, the only one that
/// can deploy it; any other is free for whichever process is first when it falls due.
async fn reschedule(
    gw: &Gateway,
    job: &DeploymentJob,
    attempts: u32,
    error: &str,
    owner: &str,
) -> Result<(), crate::store::StoreError> {
    let pause = RETRY_BASE
        .as_secs()
        .saturating_mul(1 << (attempts - 1).min(20));
    let due = gw.now() + i64::try_from(pause).unwrap_or(i64::MAX / 2);
    tracing::warn!(certificate = %job.certificate_id, target = %job.target, attempts, retry_in = pause, %error, "deployment failed; will retry");
    let next = DeploymentJob {
        attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
        next_attempt_at: due,
        lease_owner: job.with_key.then(|| owner.to_owned()),
        lease_until: if job.with_key {
            due + lease_seconds(gw)
        } else {
            0
        },
        last_error: Some(error.to_owned()),
        ..job.clone()
    };
    let owner = owner.to_owned();
    gw.db(move |s| s.reschedule_deployment(&next, &owner))
        .await
        .map(|_| ())
}

/// The audit event of a settled deployment.
fn outcome_event(cert: &Certificate, report: &Report) -> Event {
    let resource = format!("certificate/{}", cert.serial);
    let details = serde_json::to_value(report).unwrap_or_default();
    if report.deployed {
        tracing::info!(target = %report.target, serial = %cert.serial, attempts = report.attempts, "certificate deployed");
        Event::new("certificate.deployed", resource, details)
    } else {
        let error = report.error.as_deref().unwrap_or_default();
        tracing::warn!(target = %report.target, serial = %cert.serial, %error, "certificate deployment failed");
        Event::new("certificate.deploy_failed", resource, details)
    }
}

fn notify_failure(gw: &Gateway, cert: &Certificate, report: &Report) {
    let error = report.error.as_deref().unwrap_or_default();
    crate::authority::notify::deploy_failed(gw, cert, &report.target, error);
}

/// One deploy, then verify when the target asks for it: the receipt and what verify said.
async fn attempt_once(
    target: &Target,
    deployment: &Deployment,
) -> Result<(String, String), Failure> {
    let receipt = target
        .deployer
        .deploy(deployment)
        .await
        .map_err(Failure::of)?;
    if !target.verify {
        return Ok((receipt, "skipped".into()));
    }
    match target
        .deployer
        .verify(&target.name, &target.config, &deployment.serial)
        .await
        .map_err(Failure::of)?
    {
        VerifyOutcome::Deployed => Ok((receipt, "deployed".into())),
        VerifyOutcome::Mismatch(what) => Err(Failure::Retry(format!(
            "deployed ({receipt}) but the target serves another certificate: {what}"
        ))),
        VerifyOutcome::Missing => Err(Failure::Retry(format!(
            "deployed ({receipt}) but the target serves no certificate"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<NamePattern> {
        list.iter()
            .map(|p| NamePattern::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn a_target_takes_certificates_whose_every_name_it_serves() {
        let edge = patterns(&["*.example.com", "example.com", "10.0.0.0/8"]);
        let www = Identifier::dns("www.example.com");
        let apex = Identifier::dns("example.com");
        let other = Identifier::dns("www.example.org");
        let ip = Identifier::ip("10.1.2.3".parse().unwrap());
        assert!(covers(&edge, &[www.clone(), apex.clone(), ip]));
        assert!(
            !covers(&edge, &[www.clone(), other.clone()]),
            "one foreign name"
        );
        assert!(
            !covers(&edge, &[]),
            "a certificate of no names goes nowhere"
        );
        assert!(covers(&[], &[other]), "no patterns: every certificate");
    }

    #[test]
    fn a_permanent_deployer_error_is_final_and_the_others_are_retried() {
        let plugin_error = |permanent| PluginError::Plugin {
            plugin: "push".into(),
            call: "deploy",
            message: "bad target".into(),
            permanent,
        };
        assert_eq!(
            Failure::of(plugin_error(true)),
            Failure::Final("plugin push failed permanently in deploy: bad target".into())
        );
        assert_eq!(
            Failure::of(plugin_error(false)),
            Failure::Retry("plugin push failed in deploy: bad target".into())
        );
        let fault = PluginError::Trap {
            plugin: "push".into(),
            call: "deploy",
            detail: "unreachable".into(),
        };
        assert!(matches!(Failure::of(fault), Failure::Retry(_)));
    }
}
