//! The plugin runtime: WebAssembly components implementing the WIT contract in
//! `plugin-sdk/wit/` (`acmegate:plugin@0.2.0`, and 0.1.0 from `plugin-sdk/wit-0.1.0/` through
//! `compat`), run in wasmtime. The only code of the gateway
//! that touches wasmtime.
//!
//! By role: [`limits`] (every limit, with why), `engine` (one engine, epoch ticker, pooling
//! allocator), `cache` (compiled artifacts on disk), `version` (which contract versions
//! load), `runtime` (loading and the one call path that applies limits and sorts outcomes),
//! `capabilities` (the host side of `log`, `clock`, `random`, `state`, `secrets`, network
//! capabilities; all denied unless granted), `validator` (challenge validators), `issuer` (issuer connectors), `deployer` (target
//! deployers), `notifier` (notifiers); `live` holds the version calls run on and the one
//! fresh-instance call path they share.
//!
//! Outcomes are kept apart ([`PluginError`]): an error the plugin returned through its WIT
//! `result`, a trap, a CPU or wall-clock timeout, out of memory; a plugin that keeps faulting
//! is quarantined with a doubling backoff.

mod bindings;
mod cache;
mod capabilities;
mod commands;
mod compat;
mod configured;
mod deployer;
mod dns_client;
mod engine;
mod error;
mod files;
mod http_client;
mod issuer;
pub mod limits;
mod live;
mod notifier;
mod runtime;
mod smtp_client;
mod state;
mod tls_client;
mod validator;
mod version;
pub mod watcher;
mod zmq_client;

#[cfg(test)]
mod tests;

pub use capabilities::{grant_needed, sanitize_line, Grants, HttpRefusal, SecretValue};
pub use configured::{PluginConfig, CONFIGURABLE_KINDS};
pub use deployer::{DeployerPlugin, Deployment, VerifyOutcome};
pub use error::{Failure, PluginError, TimeLimit};
pub use issuer::{
    IssuerPlugin, IssuerResult, PluginIssueError, PluginIssueOutcome, PluginIssueRequest,
};
pub use limits::Limits;
pub use notifier::{Event as NotifierEvent, EventCertificate, EventType, NotifierPlugin, Severity};
pub use runtime::{
    Inspection, PluginRuntime, PluginSpec, PluginStats, PluginStatus, RuntimeOptions,
};
pub use state::StateBacking;
pub use validator::{PolicyDecision, ValidationOutcome, ValidatorPlugin};
pub use version::{supported as supported_contracts, Contract, CONTRACT_PACKAGE, CONTRACT_VERSION};

use crate::acme::types::IdentifierType;
use bindings::wit::types as wit;

/// What a plugin said about itself in `describe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    pub kind: PluginKind,
    pub name: String,
    pub version: String,
    pub description: String,
}

/// A plugin's kind and what it handles.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginKind {
    ChallengeValidator {
        challenge_types: Vec<String>,
        identifier_types: Vec<IdentifierType>,
        new_order_policy: bool,
    },
    IssuerConnector {
        profiles: Vec<String>,
        revoke: bool,
        crl: bool,
    },
    TargetDeployer {
        targets: Vec<String>,
    },
    Notifier {
        channels: Vec<String>,
    },
}

impl PluginKind {
    /// The WIT world name of this kind.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ChallengeValidator { .. } => "challenge-validator",
            Self::IssuerConnector { .. } => "issuer-connector",
            Self::TargetDeployer { .. } => "target-deployer",
            Self::Notifier { .. } => "notifier",
        }
    }
}

impl From<wit::PluginInfo> for PluginInfo {
    fn from(info: wit::PluginInfo) -> Self {
        let kind = match info.kind {
            wit::PluginKind::ChallengeValidator(v) => PluginKind::ChallengeValidator {
                challenge_types: v.challenge_types,
                identifier_types: v
                    .identifier_types
                    .into_iter()
                    .map(|t| match t {
                        wit::IdentifierType::Dns => IdentifierType::Dns,
                        wit::IdentifierType::Ip => IdentifierType::Ip,
                    })
                    .collect(),
                new_order_policy: v.new_order_policy,
            },
            wit::PluginKind::IssuerConnector(i) => PluginKind::IssuerConnector {
                profiles: i.profiles,
                revoke: i.revoke,
                crl: i.crl,
            },
            wit::PluginKind::TargetDeployer(d) => PluginKind::TargetDeployer { targets: d.targets },
            wit::PluginKind::Notifier(n) => PluginKind::Notifier {
                channels: n.channels,
            },
        };
        Self {
            kind,
            name: info.name,
            version: info.version,
            description: info.description,
        }
    }
}
