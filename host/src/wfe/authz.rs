//! Authorizations and challenges as HTTP: reading and deactivating an authorization (RFC 8555
//! §7.5, §7.5.2) and responding to a challenge (§7.5.1); `crate::authority::authorizations`
//! decides.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use super::auth::{authenticate, KeyRule};
use super::{rfc3339, Incoming, Reply};
use crate::acme::{AuthorizationObject, AuthzStatus, ChallengeObject, ChallengeStatus, Problem};
use crate::authority::validation::identifier;
use crate::authority::{authorizations, Gateway};
use crate::store::{Authorization, Challenge};

/// Seconds a client is asked to wait before polling an authorization under validation.
const VALIDATION_RETRY_AFTER: u64 = 1;

fn challenge_object(gw: &Gateway, c: &Challenge) -> ChallengeObject {
    ChallengeObject {
        kind: c.kind.clone(),
        url: gw.challenge_url(&c.id),
        status: c.status,
        token: c.token.clone(),
        validated: c.validated.map(rfc3339),
        error: c
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok()),
    }
}

fn authz_reply(
    gw: &Gateway,
    authz: &Authorization,
    challenges: &[Challenge],
) -> Result<Reply, Problem> {
    let status = authorizations::current_status(gw, authz);
    let object = AuthorizationObject {
        identifier: identifier(authz)?,
        status,
        expires: rfc3339(authz.expires),
        // RFC 8555 §7.1.4: a valid authorization lists only the challenge that succeeded.
        challenges: challenges
            .iter()
            .filter(|c| status != AuthzStatus::Valid || c.status == ChallengeStatus::Valid)
            .map(|c| challenge_object(gw, c))
            .collect(),
        wildcard: authz.wildcard.then_some(true),
    };
    let mut reply = Reply::json(StatusCode::OK, &object);
    if challenges
        .iter()
        .any(|c| c.status == ChallengeStatus::Processing)
    {
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
    let (mut authz, challenges) = authorizations::of_account(gw, signed.account()?, id).await?;
    if !signed.jws.payload_empty {
        let update: AuthzUpdate = signed.jws.json_payload()?;
        if update.status != "deactivated" {
            return Err(Problem::malformed(
                "an authorization can only be updated to \"deactivated\"",
            ));
        }
        authz = authorizations::deactivate(gw, authz).await?;
    }
    authz_reply(gw, &authz, &challenges)
}

pub async fn challenge(gw: &Arc<Gateway>, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let (chall, authz) = authorizations::challenge_of_account(gw, signed.account()?, id).await?;
    let up = gw.authz_url(&authz.id);
    let reply =
        |c: &Challenge| Reply::json(StatusCode::OK, &challenge_object(gw, c)).link(&up, "up");
    // POST-as-GET reads the challenge; a JSON object payload (`{}`) asks for validation.
    if signed.jws.payload_empty {
        return Ok(reply(&chall));
    }
    let _: serde_json::Map<String, serde_json::Value> = signed.jws.json_payload()?;
    let now_standing = authorizations::respond(gw, chall, &authz).await?;
    let mut answer = reply(&now_standing);
    if now_standing.status == ChallengeStatus::Processing {
        answer = answer.header("retry-after", VALIDATION_RETRY_AFTER.to_string());
    }
    Ok(answer)
}
