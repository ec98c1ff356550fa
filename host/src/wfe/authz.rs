//! Authorizations and challenges: reading and deactivating an authorization (RFC 8555 §7.5,
//! §7.5.2), and responding to a challenge (§7.5.1), which starts validation in the background.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;

use super::auth::{authenticate, KeyRule};
use super::{now, rfc3339, store_problem, Gateway, Incoming, Reply};
use crate::acme::state::{authz_deactivatable, authz_status};
use crate::acme::{
    AuthorizationObject, AuthzStatus, ChallengeObject, ChallengeStatus, ChallengeType, Identifier,
    IdentifierType, Problem,
};
use crate::jws::key_authorization;
use crate::plugins::{ValidationOutcome, ValidatorPlugin};
use crate::store::{Account, Authorization, Challenge};
use crate::va::ValidationRequest;

/// Seconds a client is asked to wait before polling an authorization under validation.
const VALIDATION_RETRY_AFTER: u64 = 1;

fn identifier(a: &Authorization) -> Result<Identifier, Problem> {
    let kind: IdentifierType = a
        .identifier_type
        .parse()
        .map_err(Problem::server_internal)?;
    Ok(Identifier {
        kind,
        value: a.identifier_value.clone(),
    })
}

fn challenge_object(gw: &Gateway, c: &Challenge) -> ChallengeObject {
    ChallengeObject {
        kind: c.kind.clone(),
        url: gw.challenge_url(&c.id),
        status: c.status.parse().unwrap_or(ChallengeStatus::Invalid),
        token: c.token.clone(),
        validated: c.validated.map(rfc3339),
        error: c
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok()),
    }
}

/// Loads an authorization of `account` with its challenges.
async fn load(
    gw: &Gateway,
    account: &Account,
    id: &str,
) -> Result<(Authorization, Vec<Challenge>), Problem> {
    let aid = id.to_string();
    let (authz, challenges) = gw
        .db(move |s| {
            Ok((
                s.authorization(&aid)?,
                s.challenges_for_authorization(&aid)?,
            ))
        })
        .await
        .map_err(|e| store_problem(e, "authorization"))?;
    if authz.account_id != account.id {
        return Err(Problem::unauthorized(
            "this authorization belongs to another account",
        ));
    }
    Ok((authz, challenges))
}

fn authz_reply(
    gw: &Gateway,
    authz: &Authorization,
    challenges: &[Challenge],
) -> Result<Reply, Problem> {
    let status = authz_status(
        authz.status.parse().map_err(Problem::server_internal)?,
        authz.expires,
        now(),
    );
    let object = AuthorizationObject {
        identifier: identifier(authz)?,
        status,
        expires: rfc3339(authz.expires),
        // RFC 8555 §7.1.4: a valid authorization lists only the challenge that succeeded.
        challenges: challenges
            .iter()
            .filter(|c| status != AuthzStatus::Valid || c.status == "valid")
            .map(|c| challenge_object(gw, c))
            .collect(),
        wildcard: authz.wildcard.then_some(true),
    };
    let mut reply = Reply::json(StatusCode::OK, &object);
    if challenges.iter().any(|c| c.status == "processing") {
        reply = reply.header("retry-after", VALIDATION_RETRY_AFTER.to_string());
    }
    Ok(reply)
}

#[derive(Deserialize)]
struct AuthzUpdate {
    status: String,
}

pub async fn authorization(gw: &Gateway, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let account = signed.account()?.clone();
    let (mut authz, challenges) = load(gw, &account, id).await?;
    if !signed.jws.payload_empty {
        let update: AuthzUpdate = signed.jws.json_payload()?;
        if update.status != "deactivated" {
            return Err(Problem::malformed(
                "an authorization can only be updated to \"deactivated\"",
            ));
        }
        let current = authz_status(
            authz.status.parse().map_err(Problem::server_internal)?,
            authz.expires,
            now(),
        );
        if !authz_deactivatable(current) {
            return Err(Problem::malformed(format!(
                "a {current} authorization cannot be deactivated"
            )));
        }
        let (aid, from) = (authz.id.clone(), authz.status.clone());
        let moved = gw
            .db_as(&super::acme_actor(&authz.account_id), move |s| {
                s.transition_authorization(&aid, &from, "deactivated")
            })
            .await
            .map_err(|e| store_problem(e, "authorization"))?;
        if !moved {
            return Err(
                Problem::malformed("the authorization changed meanwhile; fetch it again")
                    .with_status(409),
            );
        }
        authz.status = AuthzStatus::Deactivated.as_str().into();
    }
    authz_reply(gw, &authz, &challenges)
}

pub async fn challenge(gw: &Arc<Gateway>, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let account = signed.account()?.clone();
    let cid = id.to_string();
    let chall = gw
        .db(move |s| s.challenge(&cid))
        .await
        .map_err(|e| store_problem(e, "challenge"))?;
    let (authz, _) = load(gw, &account, &chall.authz_id).await?;
    let up = gw.authz_url(&authz.id);
    let reply =
        |c: &Challenge| Reply::json(StatusCode::OK, &challenge_object(gw, c)).link(&up, "up");
    // POST-as-GET reads the challenge; a JSON object payload (`{}`) asks for validation.
    if signed.jws.payload_empty {
        return Ok(reply(&chall));
    }
    let _: serde_json::Map<String, serde_json::Value> = signed.jws.json_payload()?;
    let authz_state = authz_status(
        authz.status.parse().map_err(Problem::server_internal)?,
        authz.expires,
        now(),
    );
    if chall.status != "pending" || authz_state != AuthzStatus::Pending {
        // Responding again to a challenge already under way or decided changes nothing.
        return Ok(reply(&chall));
    }
    let plugin = gw.challenge_plugins.get(&chall.kind).cloned();
    let builtin: Option<ChallengeType> = chall.kind.parse().ok();
    if plugin.is_none() && builtin.is_none() {
        return Err(Problem::server_internal(format!(
            "challenge type {} is no longer configured",
            chall.kind
        )));
    }
    if gw.config.acme.auto_approve {
        // DANGER mode (config `acme.auto_approve`): no check at all.
        let c = chall.id.clone();
        gw.db(move |s| s.record_validation(&c, true, Some(now()), None))
            .await
            .map_err(|e| store_problem(e, "challenge"))?;
        gw.metrics.validation(&chall.kind, true);
        let mut done = chall;
        done.status = ChallengeStatus::Valid.as_str().into();
        done.validated = Some(now());
        return Ok(reply(&done));
    }
    let c = chall.id.clone();
    let moved = gw
        .db(move |s| s.transition_challenge(&c, "pending", "processing"))
        .await
        .map_err(|e| store_problem(e, "challenge"))?;
    let mut processing = chall.clone();
    processing.status = ChallengeStatus::Processing.as_str().into();
    if moved {
        let identifier = identifier(&authz)?;
        let key_authorization = key_authorization(&chall.token, &account.jwk_thumbprint);
        let account_uri = gw.account_url(&account.id);
        let g = gw.clone();
        let (id, kind, token) = (identifier.clone(), chall.kind.clone(), chall.token.clone());
        match (plugin, builtin) {
            (Some(plugin), _) => spawn_recorded(gw.clone(), &chall, identifier, async move {
                let deadline = Duration::from_secs(g.config.validation.timeout_seconds.max(1));
                plugin_decision(
                    &plugin,
                    &id,
                    &account_uri,
                    &kind,
                    &token,
                    &key_authorization,
                    deadline,
                )
                .await
            }),
            (None, Some(challenge)) => {
                let request = ValidationRequest {
                    identifier: identifier.clone(),
                    wildcard: authz.wildcard,
                    challenge,
                    token,
                    key_authorization,
                    account_uri,
                };
                spawn_recorded(gw.clone(), &chall, identifier, async move {
                    g.va.validate(&request).await
                })
            }
            (None, None) => unreachable!("checked above"),
        }
    }
    Ok(reply(&processing).header("retry-after", VALIDATION_RETRY_AFTER.to_string()))
}

/// Runs `decide` in the background and records its outcome; the client polls the
/// authorization.
fn spawn_recorded(
    gw: Arc<Gateway>,
    challenge: &Challenge,
    identifier: Identifier,
    decide: impl std::future::Future<Output = Result<(), Problem>> + Send + 'static,
) {
    let (challenge_id, kind) = (challenge.id.clone(), challenge.kind.clone());
    tokio::spawn(async move {
        let outcome = decide.await;
        let (valid, error) = match &outcome {
            Ok(()) => (true, None),
            Err(p) => (
                false,
                Some(p.clone().with_identifier(identifier.clone()).to_json()),
            ),
        };
        tracing::info!(challenge = %challenge_id, identifier = %identifier, kind = %kind, valid, problem = ?outcome.as_ref().err().map(|p| p.to_string()), "validation finished");
        gw.metrics.validation(&kind, valid);
        let at = valid.then(now);
        if let Err(e) = gw
            .db(move |s| s.record_validation(&challenge_id, valid, at, error.as_deref()))
            .await
        {
            tracing::error!(error = %e, "failed to record validation outcome");
        }
    });
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
