//! Deploying issued certificates to the operator's targets (`[[targets]]`) through target
//! deployer plugins.
//!
//! A target names a `target-deployer` plugin, the names it serves and its own `config` (where
//! and how to deploy, handed to the plugin with every call, so one deployer serves many
//! targets). When a certificate is
//! issued (ACME or admin API) whose every identifier is covered by a target's patterns, the
//! gateway deploys it there in the background, so that a slow target never delays the ACME
//! client, then asks the plugin to verify that the target serves it. A failed attempt (deploy
//! error, fault, or a verify that does not find the certificate) is retried with a doubling
//! backoff; the last failure is audited and reported to the notifiers as `failed`. Each
//! success is audited with the plugin's receipt. Private keys reach a deployer only for
//! certificates whose key the gateway generated (admin `generate`), straight from memory:
//! they are never stored.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::acme::name_policy::{self, NamePattern};
use crate::acme::Identifier;
use crate::authority::Gateway;
pub use crate::config::TargetConfig;
use crate::plugins::{DeployerPlugin, Deployment, VerifyOutcome};
use crate::store::{Certificate, Event, ORIGIN_IDENTITY};

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

/// Deploys a newly issued `cert` to every target that covers it, in the background, with
/// retries. `private_key` (PEM) only when the gateway generated the key.
pub fn issued(gw: &Arc<Gateway>, cert: &Certificate, private_key: Option<String>) {
    for target in targets_for(gw, cert) {
        let (gw, target, cert, key) = (
            gw.clone(),
            target.clone(),
            cert.clone(),
            private_key.clone(),
        );
        tokio::spawn(async move {
            deploy_recorded(&gw, &target, &cert, key, target.attempts).await;
        });
    }
}

/// Deploys `cert` to `target` with up to `attempts` attempts, records the outcome in the audit
/// log, and tells the notifiers when every attempt failed.
pub async fn deploy_recorded(
    gw: &Gateway,
    target: &Target,
    cert: &Certificate,
    private_key: Option<String>,
    attempts: u32,
) -> Report {
    let deployment = deployment(target, cert, private_key);
    let report = deploy_with_retries(target, &deployment, attempts.max(1)).await;
    let resource = format!("certificate/{}", cert.serial);
    let details = serde_json::to_value(&report).unwrap_or_default();
    let event = if report.deployed {
        tracing::info!(target = %target.name, serial = %cert.serial, attempts = report.attempts, "certificate deployed");
        Event::new("certificate.deployed", resource, details)
    } else {
        let error = report.error.clone().unwrap_or_default();
        tracing::warn!(target = %target.name, serial = %cert.serial, %error, "certificate deployment failed");
        crate::authority::notify::deploy_failed(gw, cert, &target.name, &error);
        Event::new("certificate.deploy_failed", resource, details)
    };
    if let Err(e) = gw.db(move |s| s.record(event)).await {
        tracing::error!(error = %e, "failed to record a deployment in the audit log");
    }
    report
}

async fn deploy_with_retries(target: &Target, deployment: &Deployment, attempts: u32) -> Report {
    let mut report = Report {
        target: target.name.clone(),
        deployer: target.deployer_name.clone(),
        deployed: false,
        attempts: 0,
        receipt: None,
        verified: None,
        error: None,
    };
    let mut pause = RETRY_BASE;
    for attempt in 1..=attempts {
        report.attempts = attempt;
        match attempt_once(target, deployment).await {
            Ok((receipt, verified)) => {
                report.deployed = true;
                report.receipt = Some(receipt);
                report.verified = Some(verified);
                report.error = None;
                return report;
            }
            Err(error) => report.error = Some(error),
        }
        if attempt < attempts {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    report
}

/// One deploy, then verify when the target asks for it: the receipt and what verify said.
async fn attempt_once(
    target: &Target,
    deployment: &Deployment,
) -> Result<(String, String), String> {
    let receipt = target
        .deployer
        .deploy(deployment)
        .await
        .map_err(|e| e.to_string())?;
    if !target.verify {
        return Ok((receipt, "skipped".into()));
    }
    match target
        .deployer
        .verify(&target.name, &target.config, &deployment.serial)
        .await
        .map_err(|e| e.to_string())?
    {
        VerifyOutcome::Deployed => Ok((receipt, "deployed".into())),
        VerifyOutcome::Mismatch(what) => Err(format!(
            "deployed ({receipt}) but the target serves another certificate: {what}"
        )),
        VerifyOutcome::Missing => Err(format!(
            "deployed ({receipt}) but the target serves no certificate"
        )),
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
}
