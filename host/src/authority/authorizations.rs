//! Authorizations and their challenges (RFC 8555 §7.5): reading one of an account's,
//! deactivating it (§7.5.2), and responding to a challenge (§7.5.1), which hands it to
//! validation (`super::validation`).

use std::sync::Arc;

use super::{acme_actor, store_problem, Gateway};
use crate::acme::state::{authz_deactivatable, authz_status};
use crate::acme::{AuthzStatus, ChallengeStatus, Identifier, Problem};
use crate::store::{Account, Authorization, Challenge};

/// Whether `account_id` holds a valid, unexpired authorization for every one of `names` now
/// (a wildcard needs one for its base name): what lets an account act on a certificate it did
/// not order (RFC 8555 §7.6 revocation, RFC 9773 §5 replaces).
pub async fn holds_all(
    gw: &Gateway,
    account_id: &str,
    names: &[Identifier],
) -> Result<bool, Problem> {
    let (aid, t, names) = (account_id.to_owned(), gw.now(), names.to_vec());
    gw.db(move |s| {
        for id in &names {
            let value = id.value.trim_start_matches("*.");
            if !s.has_valid_authorization(&aid, id.kind.as_str(), value, t)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await
    .map_err(|e| store_problem(e, "authorization"))
}

/// An authorization of `account` with its challenges.
pub async fn of_account(
    gw: &Gateway,
    account: &Account,
    id: &str,
) -> Result<(Authorization, Vec<Challenge>), Problem> {
    let aid = id.to_string();
    let (authz, challenges) = gw
        .read(move |s| s.authorization_with_challenges(&aid))
        .await
        .map_err(|e| store_problem(e, "authorization"))?;
    if authz.account_id != account.id {
        return Err(Problem::unauthorized(
            "this authorization belongs to another account",
        ));
    }
    Ok((authz, challenges))
}

/// The status `authz` has now (a pending or valid one may have expired since it was stored).
pub fn current_status(gw: &Gateway, authz: &Authorization) -> AuthzStatus {
    authz_status(authz.status, authz.expires, gw.now())
}

/// Deactivates `authz` at its client's request (§7.5.2): only a pending or valid one can be.
pub async fn deactivate(gw: &Gateway, authz: Authorization) -> Result<Authorization, Problem> {
    let current = current_status(gw, &authz);
    if !authz_deactivatable(current) {
        return Err(Problem::malformed(format!(
            "a {current} authorization cannot be deactivated"
        )));
    }
    let (aid, from) = (authz.id.clone(), authz.status);
    let moved = gw
        .db_as(&acme_actor(&authz.account_id), move |s| {
            s.transition_authorization(&aid, from, AuthzStatus::Deactivated)
        })
        .await
        .map_err(|e| store_problem(e, "authorization"))?;
    if !moved {
        return Err(
            Problem::malformed("the authorization changed meanwhile; fetch it again")
                .with_status(409),
        );
    }
    Ok(Authorization {
        status: AuthzStatus::Deactivated,
        ..authz
    })
}

/// A challenge of `account` with its authorization.
pub async fn challenge_of_account(
    gw: &Gateway,
    account: &Account,
    id: &str,
) -> Result<(Challenge, Authorization), Problem> {
    let cid = id.to_string();
    let (challenge, authz) = gw
        .read(move |s| s.challenge_with_authorization(&cid))
        .await
        .map_err(|e| store_problem(e, "challenge"))?;
    if authz.account_id != account.id {
        return Err(Problem::unauthorized(
            "this challenge belongs to another account",
        ));
    }
    Ok((challenge, authz))
}

/// The client answers `challenge` of `authz` (§7.5.1): validation starts when both are
/// pending; responding again to a challenge already under way or decided, or to one of an
/// authorization that is no longer pending, changes nothing. Returns the challenge as it
/// stands.
pub async fn respond(
    gw: &Arc<Gateway>,
    challenge: Challenge,
    authz: &Authorization,
) -> Result<Challenge, Problem> {
    if challenge.status != ChallengeStatus::Pending
        || current_status(gw, authz) != AuthzStatus::Pending
    {
        return Ok(challenge);
    }
    super::validation::respond(gw, challenge).await
}
