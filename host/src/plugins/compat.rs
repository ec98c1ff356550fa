//! Plugins built against `acmegate:plugin@0.1.0`, in the current contract's terms: each call
//! of a 0.1.0 component goes through here, which converts the request to 0.1.0's export types
//! and the answer back, and takes 0.1.0's bare string errors as retryable (the gateway
//! retried them before 0.2 gave plugins the choice). The shared `types` (identifiers,
//! problems, timestamps) are the same Rust types in both versions.

use wasmtime::Store;

use super::bindings::v0_1;
use super::bindings::wit::types::PluginError as WitPluginError;
use super::capabilities::HostState;
use super::error::Failure;

use super::bindings::deployer::exports::acmegate::plugin::deployer as deployer_now;
use super::bindings::issuer::exports::acmegate::plugin::issuer as issuer_now;
use super::bindings::notifier::exports::acmegate::plugin::notifications as notify_now;
use super::bindings::validator::exports::acmegate::plugin::validator as validator_now;
use v0_1::deployer::exports::acmegate::plugin::deployer as deployer_old;
use v0_1::issuer::exports::acmegate::plugin::issuer as issuer_old;
use v0_1::notifier::exports::acmegate::plugin::notifications as notify_old;
use v0_1::validator::exports::acmegate::plugin::validator as validator_old;

/// What a call of a 0.1.0 component answers, in the current terms.
type Answer<T> = wasmtime::Result<Result<T, Failure>>;

/// A 0.1.0 plugin's error: a bare string, which the gateway always retried, so retryable.
pub(crate) fn failure_v0_1(message: String) -> Failure {
    Failure::Retryable(message)
}

/// A current plugin's `plugin-error`.
pub(crate) fn failure(error: WitPluginError) -> Failure {
    match error {
        WitPluginError::Retryable(message) => Failure::Retryable(message),
        WitPluginError::Permanent(message) => Failure::Permanent(message),
    }
}

pub(crate) async fn validate(
    bindings: &v0_1::validator::ChallengeValidator,
    store: &mut Store<HostState>,
    request: &validator_now::ChallengeRequest,
) -> Answer<validator_now::ValidationOutcome> {
    let request = validator_old::ChallengeRequest {
        identifier: request.identifier.clone(),
        account: request.account.clone(),
        challenge_type: request.challenge_type.clone(),
        token: request.token.clone(),
        key_authorization: request.key_authorization.clone(),
    };
    let answer = bindings
        .acmegate_plugin_validator()
        .call_validate(store, &request)
        .await?;
    Ok(answer.map_err(failure_v0_1).map(|outcome| match outcome {
        validator_old::ValidationOutcome::Valid => validator_now::ValidationOutcome::Valid,
        validator_old::ValidationOutcome::Invalid(p) => {
            validator_now::ValidationOutcome::Invalid(p)
        }
        validator_old::ValidationOutcome::RetryLater(secs) => {
            validator_now::ValidationOutcome::RetryLater(secs)
        }
    }))
}

pub(crate) async fn check_new_order(
    bindings: &v0_1::validator::ChallengeValidator,
    store: &mut Store<HostState>,
    order: &validator_now::OrderRequest,
) -> Answer<validator_now::PolicyDecision> {
    let order = validator_old::OrderRequest {
        account: order.account.clone(),
        identifiers: order.identifiers.clone(),
        profile: order.profile.clone(),
    };
    let answer = bindings
        .acmegate_plugin_validator()
        .call_check_new_order(store, &order)
        .await?;
    Ok(answer.map_err(failure_v0_1).map(|decision| match decision {
        validator_old::PolicyDecision::Allow => validator_now::PolicyDecision::Allow,
        validator_old::PolicyDecision::Refuse(problems) => {
            validator_now::PolicyDecision::Refuse(problems)
        }
    }))
}

fn target_v0_1(target: &deployer_now::Target) -> deployer_old::Target {
    deployer_old::Target {
        name: target.name.clone(),
        config: target.config.clone(),
    }
}

pub(crate) async fn deploy(
    bindings: &v0_1::deployer::TargetDeployer,
    store: &mut Store<HostState>,
    deployment: &deployer_now::Deployment,
) -> Answer<String> {
    let deployment = deployer_old::Deployment {
        target: target_v0_1(&deployment.target),
        identifiers: deployment.identifiers.clone(),
        serial: deployment.serial.clone(),
        chain: deployment.chain.clone(),
        private_key: deployment.private_key.clone(),
        not_after: deployment.not_after,
    };
    let answer = bindings
        .acmegate_plugin_deployer()
        .call_deploy(store, &deployment)
        .await?;
    Ok(answer.map_err(failure_v0_1))
}

pub(crate) async fn verify(
    bindings: &v0_1::deployer::TargetDeployer,
    store: &mut Store<HostState>,
    target: &deployer_now::Target,
    serial: &str,
) -> Answer<deployer_now::VerifyOutcome> {
    let answer = bindings
        .acmegate_plugin_deployer()
        .call_verify(store, &target_v0_1(target), serial)
        .await?;
    Ok(answer.map_err(failure_v0_1).map(|outcome| match outcome {
        deployer_old::VerifyOutcome::Deployed => deployer_now::VerifyOutcome::Deployed,
        deployer_old::VerifyOutcome::Mismatch(what) => deployer_now::VerifyOutcome::Mismatch(what),
        deployer_old::VerifyOutcome::Missing => deployer_now::VerifyOutcome::Missing,
    }))
}

pub(crate) async fn notify(
    bindings: &v0_1::notifier::Notifier,
    store: &mut Store<HostState>,
    event: &notify_now::Event,
) -> Answer<()> {
    let event = notify_old::Event {
        event_type: match event.event_type {
            notify_now::EventType::Issued => notify_old::EventType::Issued,
            notify_now::EventType::Renewed => notify_old::EventType::Renewed,
            notify_now::EventType::Revoked => notify_old::EventType::Revoked,
            notify_now::EventType::Expiring => notify_old::EventType::Expiring,
            notify_now::EventType::Failed => notify_old::EventType::Failed,
        },
        severity: match event.severity {
            notify_now::Severity::Info => notify_old::Severity::Info,
            notify_now::Severity::Warning => notify_old::Severity::Warning,
            notify_now::Severity::Critical => notify_old::Severity::Critical,
        },
        certificate: event.certificate.as_ref().map(|c| notify_old::Certificate {
            serial: c.serial.clone(),
            identifiers: c.identifiers.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            account: c.account.clone(),
        }),
        days_left: event.days_left,
        message: event.message.clone(),
    };
    let answer = bindings
        .acmegate_plugin_notifications()
        .call_notify(store, &event)
        .await?;
    Ok(answer.map_err(failure_v0_1))
}

/// An issuer's answer: `issuer-error` is unchanged from 0.1.0 but generated twice.
type IssuerAnswer<T> = wasmtime::Result<Result<T, issuer_now::IssuerError>>;

fn issuer_error(error: issuer_old::IssuerError) -> issuer_now::IssuerError {
    match error {
        issuer_old::IssuerError::Rejected(p) => issuer_now::IssuerError::Rejected(p),
        issuer_old::IssuerError::Unavailable(secs) => issuer_now::IssuerError::Unavailable(secs),
        issuer_old::IssuerError::Failed(message) => issuer_now::IssuerError::Failed(message),
    }
}

fn issue_outcome(outcome: issuer_old::IssueOutcome) -> issuer_now::IssueOutcome {
    match outcome {
        issuer_old::IssueOutcome::Issued(chain) => issuer_now::IssueOutcome::Issued(chain),
        issuer_old::IssueOutcome::Pending(p) => {
            issuer_now::IssueOutcome::Pending(issuer_now::PendingIssue {
                handle: p.handle,
                retry_after: p.retry_after,
            })
        }
    }
}

pub(crate) async fn issue(
    bindings: &v0_1::issuer::IssuerConnector,
    store: &mut Store<HostState>,
    request: &issuer_now::IssueRequest,
) -> IssuerAnswer<issuer_now::IssueOutcome> {
    let request = issuer_old::IssueRequest {
        csr: request.csr.clone(),
        identifiers: request.identifiers.clone(),
        profile: request.profile.clone(),
        not_before: request.not_before,
        not_after: request.not_after,
        account: request.account.clone(),
        order: request.order.clone(),
    };
    let answer = bindings
        .acmegate_plugin_issuer()
        .call_issue(store, &request)
        .await?;
    Ok(answer.map(issue_outcome).map_err(issuer_error))
}

pub(crate) async fn poll(
    bindings: &v0_1::issuer::IssuerConnector,
    store: &mut Store<HostState>,
    handle: &str,
) -> IssuerAnswer<issuer_now::IssueOutcome> {
    let answer = bindings
        .acmegate_plugin_issuer()
        .call_poll(store, handle)
        .await?;
    Ok(answer.map(issue_outcome).map_err(issuer_error))
}

pub(crate) async fn revoke(
    bindings: &v0_1::issuer::IssuerConnector,
    store: &mut Store<HostState>,
    request: &issuer_now::RevokeRequest,
) -> IssuerAnswer<()> {
    let request = issuer_old::RevokeRequest {
        certificate: request.certificate.clone(),
        serial: request.serial.clone(),
        reason: request.reason,
    };
    let answer = bindings
        .acmegate_plugin_issuer()
        .call_revoke(store, &request)
        .await?;
    Ok(answer.map_err(issuer_error))
}

pub(crate) async fn ca_chain(
    bindings: &v0_1::issuer::IssuerConnector,
    store: &mut Store<HostState>,
) -> IssuerAnswer<String> {
    let answer = bindings
        .acmegate_plugin_issuer()
        .call_ca_chain(store)
        .await?;
    Ok(answer.map_err(issuer_error))
}

pub(crate) async fn crl(
    bindings: &v0_1::issuer::IssuerConnector,
    store: &mut Store<HostState>,
) -> IssuerAnswer<Vec<u8>> {
    let answer = bindings.acmegate_plugin_issuer().call_crl(store).await?;
    Ok(answer.map_err(issuer_error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_0_1_are_retryable_and_0_2_keeps_the_plugins_choice() {
        assert_eq!(
            failure_v0_1("backend down".into()),
            Failure::Retryable("backend down".into())
        );
        assert_eq!(
            failure(WitPluginError::Retryable("busy".into())),
            Failure::Retryable("busy".into())
        );
        assert_eq!(
            failure(WitPluginError::Permanent("no such directory".into())),
            Failure::Permanent("no such directory".into())
        );
    }

    #[test]
    fn issuer_answers_of_0_1_keep_their_meaning() {
        assert!(matches!(
            issuer_error(issuer_old::IssuerError::Unavailable(7)),
            issuer_now::IssuerError::Unavailable(7)
        ));
        assert!(matches!(
            issuer_error(issuer_old::IssuerError::Failed("x".into())),
            issuer_now::IssuerError::Failed(m) if m == "x"
        ));
        let pending = issue_outcome(issuer_old::IssueOutcome::Pending(
            issuer_old::PendingIssue {
                handle: "h".into(),
                retry_after: 3,
            },
        ));
        assert!(matches!(
            pending,
            issuer_now::IssueOutcome::Pending(p) if p.handle == "h" && p.retry_after == 3
        ));
    }
}
