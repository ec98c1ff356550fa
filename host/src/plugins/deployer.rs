//! Target deployer plugins: loading with the describe + configure canary, and the `deploy`
//! and `verify` calls.

use super::bindings::deployer::exports::acmegate::plugin::deployer as wit_deployer;
use super::bindings::Versioned;
use super::compat;
use super::limits::DEPLOYER_LIMITS;
use super::validator::identifier_to_wit;
use super::PluginError;
use crate::acme::types::Identifier;

super::live::plugin_handle!(
    /// A loaded target deployer.
    DeployerPlugin,
    super::bindings::DeployerWorld,
    DEPLOYER_LIMITS,
    load_deployer,
    reload_deployer
);

/// One certificate for one target.
#[derive(Clone)]
pub struct Deployment {
    /// The operator's name for the target (`[[targets]] name`).
    pub target: String,
    /// The target's `config` table as JSON.
    pub target_config: String,
    pub identifiers: Vec<Identifier>,
    /// Lowercase hex.
    pub serial: String,
    /// PEM, leaf first.
    pub chain: String,
    /// PEM; only for keys the gateway generated itself.
    pub private_key: Option<String>,
    pub not_after: i64,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Deployment")
            .field("target", &self.target)
            .field("serial", &self.serial)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// What `verify` found at the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The target serves the certificate.
    Deployed,
    /// The target serves something else; the text says what.
    Mismatch(String),
    /// Nothing found at the target.
    Missing,
}

impl DeployerPlugin {
    /// Installs `deployment` on its target. `Ok` is the plugin's receipt; the plugin's own
    /// failure (`PluginError::Plugin`, permanent or not) and faults of the call are both
    /// `Err`.
    pub async fn deploy(&self, deployment: &Deployment) -> Result<String, PluginError> {
        let wit = wit_deployer::Deployment {
            target: wit_deployer::Target {
                name: deployment.target.clone(),
                config: deployment.target_config.clone(),
            },
            identifiers: deployment
                .identifiers
                .iter()
                .map(identifier_to_wit)
                .collect(),
            serial: deployment.serial.clone(),
            chain: deployment.chain.clone(),
            private_key: deployment.private_key.clone(),
            not_after: deployment.not_after,
        };
        self.version()
            .call("deploy", async |bindings, store| match bindings {
                Versioned::Current(b) => Ok(b
                    .acmegate_plugin_deployer()
                    .call_deploy(store, &wit)
                    .await?
                    .map_err(compat::failure)),
                Versioned::V0_1(b) => compat::deploy(b, store, &wit).await,
            })
            .await
    }

    /// Asks whether `target` (configured with `target_config`, JSON) serves the certificate
    /// with `serial` (lowercase hex).
    pub async fn verify(
        &self,
        target: &str,
        target_config: &str,
        serial: &str,
    ) -> Result<VerifyOutcome, PluginError> {
        let target = wit_deployer::Target {
            name: target.into(),
            config: target_config.into(),
        };
        let outcome = self
            .version()
            .call("verify", async |bindings, store| match bindings {
                Versioned::Current(b) => Ok(b
                    .acmegate_plugin_deployer()
                    .call_verify(store, &target, serial)
                    .await?
                    .map_err(compat::failure)),
                Versioned::V0_1(b) => compat::verify(b, store, &target, serial).await,
            })
            .await?;
        Ok(match outcome {
            wit_deployer::VerifyOutcome::Deployed => VerifyOutcome::Deployed,
            wit_deployer::VerifyOutcome::Mismatch(what) => VerifyOutcome::Mismatch(what),
            wit_deployer::VerifyOutcome::Missing => VerifyOutcome::Missing,
        })
    }
}
