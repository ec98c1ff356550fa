//! Authorizations and challenges: reading and deactivating an authorization (RFC 8555 §7.5,
//! §7.5.2), and responding to a challenge (§7.5.1), which starts validation in the background.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use super::auth::{authenticate, KeyRule};
use super::{now, rfc3339, store_problem, Gateway, Incoming, Reply};
use crate::acme::state::{authz_deactivatable, authz_status};
use crate::acme::{AuthorizationObject, AuthzStatus, ChallengeObject, ChallengeStatus, Problem};
use crate::store::{Account, Authorization, Challenge};
use crate::validation::identifier;

/// Seconds a client is asked to wait before polling an authorization under validation.
const VALIDATION_RETRY_AFTER: u64 = 1;

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
    let now_standing = crate::validation::respond(gw, chall).await?;
    let mut answer = reply(&now_standing);
    if now_standing.status == "processing" {
        answer = answer.header("retry-after", VALIDATION_RETRY_AFTER.to_string());
    }
    Ok(answer)
}
