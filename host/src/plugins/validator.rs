//! Challenge validator plugins: loading with the describe + configure canary, and the
//! `validate` and `check-new-order` calls, translated to the gateway's ACME types.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

use super::bindings::validator::exports::acmegate::plugin::validator as wit_validator;
use super::bindings::validator::{ChallengeValidator, ChallengeValidatorPre};
use super::bindings::wit::types as wit;
use super::capabilities::HostState;
use super::limits::VALIDATOR_LIMITS;
use super::live::Live;
use super::runtime::{PluginRuntime, PluginSpec, PluginStats, PluginStatus};
use super::{PluginError, PluginInfo, PluginKind};
use crate::acme::problem::{Problem, ProblemType};
use crate::acme::types::{Identifier, IdentifierType};

/// A loaded challenge validator. Cheap to clone (clones share the plugin and see its
/// reloads); calls may run concurrently up to its limit.
///
/// Reloading swaps the current version atomically: a call takes the version current when it
/// starts and finishes on it, and a failed reload leaves the old version in place.
#[derive(Clone, Debug)]
pub struct ValidatorPlugin {
    current: Live<Loaded>,
}

type Loaded = super::live::Loaded<ChallengeValidatorPre<HostState>>;

/// What a validator decided about a challenge (RFC 8555 §7.5.1, §8.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidationOutcome {
    /// Proven: the authorization becomes valid.
    Valid,
    /// Not proven: the challenge becomes invalid with this error (RFC 8555 §7.1.6).
    Invalid(Problem),
    /// Undecided; try again after this long (RFC 8555 §8.2).
    RetryLater(Duration),
}

/// What a validator's newOrder policy decided (RFC 8555 §7.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyDecision {
    Allow,
    /// A `rejectedIdentifier` problem with one subproblem per refused identifier
    /// (RFC 8555 §6.7.1).
    Refuse(Problem),
}

impl PluginRuntime {
    /// Loads a challenge validator: compile (or cache), version check, link, then `describe`
    /// (must say `challenge-validator`) and `configure` as a canary; an error at any step
    /// means the plugin is not used.
    pub async fn load_validator(&self, spec: PluginSpec) -> Result<ValidatorPlugin, PluginError> {
        let loaded = self.load_validator_version(spec).await?;
        Ok(ValidatorPlugin {
            current: Live::new(loaded),
        })
    }

    /// Loads a new version of `plugin` (new file, configuration, grants or limits) with the
    /// same canary as [`Self::load_validator`], then swaps it in. Calls already running finish
    /// on the old version; on any error the old version stays and the error is returned.
    pub async fn reload_validator(
        &self,
        plugin: &ValidatorPlugin,
        spec: PluginSpec,
    ) -> Result<(), PluginError> {
        plugin
            .current
            .swap(self.load_validator_version(spec).await?);
        Ok(())
    }

    async fn load_validator_version(&self, spec: PluginSpec) -> Result<Arc<Loaded>, PluginError> {
        self.load_version::<super::bindings::ValidatorWorld>(spec, VALIDATOR_LIMITS)
            .await
    }
}

impl Loaded {
    /// One call in a fresh instance of this version: instantiate, configure, then `f`.
    async fn call<R>(
        &self,
        call: &'static str,
        f: impl AsyncFnOnce(
            &ChallengeValidator,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, PluginError> {
        let inner = self;
        inner
            .calls
            .call(call, async move |store| {
                let bindings = inner.pre.instantiate_async(&mut *store).await?;
                let configured = bindings
                    .acmegate_plugin_plugin()
                    .call_configure(&mut *store, &inner.calls.config)
                    .await?;
                if let Err(message) = configured {
                    return Ok(Err(format!(
                        "configure failed in a fresh instance: {message}"
                    )));
                }
                f(&bindings, store).await
            })
            .await
    }
}

impl ValidatorPlugin {
    /// The version calls start on now. A poisoned lock is still consistent: the only write is
    /// one assignment of an `Arc`.
    fn version(&self) -> Arc<Loaded> {
        self.current.current()
    }

    /// What the current version said about itself at load.
    pub fn info(&self) -> PluginInfo {
        self.current.info()
    }

    /// Counters of the current version since it was loaded.
    pub fn stats(&self) -> PluginStats {
        self.current.stats()
    }

    /// File hash, generation, load time, counters and last error of the current version.
    pub fn status(&self) -> PluginStatus {
        self.current.status()
    }

    /// Asks the plugin to decide a challenge (RFC 8555 §7.5.1). `key_authorization` is the
    /// expected value (RFC 8555 §8.1), which the plugin may compare with what it finds.
    pub async fn validate(
        &self,
        identifier: &Identifier,
        account: &str,
        challenge_type: &str,
        token: &str,
        key_authorization: &str,
    ) -> Result<ValidationOutcome, PluginError> {
        let request = wit_validator::ChallengeRequest {
            identifier: identifier_to_wit(identifier),
            account: account.into(),
            challenge_type: challenge_type.into(),
            token: token.into(),
            key_authorization: key_authorization.into(),
        };
        let outcome = self
            .version()
            .call("validate", async |bindings, store| {
                bindings
                    .acmegate_plugin_validator()
                    .call_validate(store, &request)
                    .await
            })
            .await?;
        Ok(match outcome {
            wit_validator::ValidationOutcome::Valid => ValidationOutcome::Valid,
            wit_validator::ValidationOutcome::Invalid(p) => {
                ValidationOutcome::Invalid(problem_from_wit(p))
            }
            wit_validator::ValidationOutcome::RetryLater(secs) => {
                ValidationOutcome::RetryLater(Duration::from_secs(secs.into()))
            }
        })
    }

    /// The newOrder policy (RFC 8555 §7.4). Plugins whose `describe` did not ask for it are
    /// not called and allow everything.
    pub async fn check_new_order(
        &self,
        account: &str,
        identifiers: &[Identifier],
        profile: Option<&str>,
    ) -> Result<PolicyDecision, PluginError> {
        let version = self.version();
        let wants_policy = matches!(
            version.info.kind,
            PluginKind::ChallengeValidator {
                new_order_policy: true,
                ..
            }
        );
        if !wants_policy {
            return Ok(PolicyDecision::Allow);
        }
        let order = wit_validator::OrderRequest {
            account: account.into(),
            identifiers: identifiers.iter().map(identifier_to_wit).collect(),
            profile: profile.map(str::to_string),
        };
        let decision = version
            .call("check-new-order", async |bindings, store| {
                bindings
                    .acmegate_plugin_validator()
                    .call_check_new_order(store, &order)
                    .await
            })
            .await?;
        Ok(match decision {
            wit_validator::PolicyDecision::Allow => PolicyDecision::Allow,
            wit_validator::PolicyDecision::Refuse(problems) => {
                let subs: Vec<Problem> = problems.into_iter().map(problem_from_wit).collect();
                let names: Vec<&str> = subs
                    .iter()
                    .filter_map(|p| p.identifier.as_ref().map(|i| i.value.as_str()))
                    .collect();
                let detail = format!("policy {} refused: {}", version.info.name, names.join(", "));
                PolicyDecision::Refuse(Problem::from_subproblems(
                    ProblemType::RejectedIdentifier,
                    detail,
                    subs,
                ))
            }
        })
    }
}

pub(super) fn identifier_to_wit(id: &Identifier) -> wit::Identifier {
    wit::Identifier {
        kind: match id.kind {
            IdentifierType::Dns => wit::IdentifierType::Dns,
            IdentifierType::Ip => wit::IdentifierType::Ip,
        },
        value: id.value.clone(),
    }
}

fn identifier_from_wit(id: wit::Identifier) -> Identifier {
    Identifier {
        kind: match id.kind {
            wit::IdentifierType::Dns => IdentifierType::Dns,
            wit::IdentifierType::Ip => IdentifierType::Ip,
        },
        value: id.value,
    }
}

/// A plugin's problem as an ACME problem document with the matching type and status.
pub(super) fn problem_from_wit(p: wit::Problem) -> Problem {
    use wit::ProblemType as W;
    let kind = match p.kind {
        W::BadCsr => ProblemType::BadCsr,
        W::Caa => ProblemType::Caa,
        W::Connection => ProblemType::Connection,
        W::Dns => ProblemType::Dns,
        W::IncorrectResponse => ProblemType::IncorrectResponse,
        W::RejectedIdentifier => ProblemType::RejectedIdentifier,
        W::ServerInternal => ProblemType::ServerInternal,
        W::Tls => ProblemType::Tls,
        W::Unauthorized => ProblemType::Unauthorized,
        W::UnsupportedIdentifier => ProblemType::UnsupportedIdentifier,
        W::UserActionRequired => ProblemType::UserActionRequired,
    };
    let problem = Problem::new(kind, p.detail);
    match p.identifier {
        Some(id) => problem.with_identifier(identifier_from_wit(id)),
        None => problem,
    }
}
