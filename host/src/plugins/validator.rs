//! Challenge validator plugins: loading with the describe + configure canary, and the
//! `validate` and `check-new-order` calls, translated to the gateway's ACME types.

use std::time::Duration;

use super::bindings::validator::exports::acmegate::plugin::validator as wit_validator;
use super::bindings::wit::types as wit;
use super::bindings::Versioned;
use super::compat;
use super::limits::VALIDATOR_LIMITS;
use super::{PluginError, PluginKind};
use crate::acme::problem::{Problem, ProblemType};
use crate::acme::types::{Identifier, IdentifierType};

super::live::plugin_handle!(
    /// A loaded challenge validator; calls may run concurrently up to its limit.
    ValidatorPlugin,
    super::bindings::ValidatorWorld,
    VALIDATOR_LIMITS,
    load_validator,
    reload_validator
);

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

impl ValidatorPlugin {
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
            .call("validate", async |bindings, store| match bindings {
                Versioned::Current(b) => Ok(b
                    .acmegate_plugin_validator()
                    .call_validate(store, &request)
                    .await?
                    .map_err(compat::failure)),
                Versioned::V0_1(b) => compat::validate(b, store, &request).await,
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
            .call("check-new-order", async |bindings, store| match bindings {
                Versioned::Current(b) => Ok(b
                    .acmegate_plugin_validator()
                    .call_check_new_order(store, &order)
                    .await?
                    .map_err(compat::failure)),
                Versioned::V0_1(b) => compat::check_new_order(b, store, &order).await,
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
