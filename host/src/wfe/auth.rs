//! The request checks of RFC 8555 §6 that every POST passes before its handler runs: content
//! type, JWS syntax and algorithm, `url`, `jwk` xor `kid`, the account behind `kid`, the
//! signature, and the single-use nonce.

use serde_json::{Map, Value};

use super::Incoming;
use crate::acme::{AccountStatus, Problem};
use crate::authority::{store_problem, Gateway};
use crate::jws::{self, Jws};
use crate::store::Account;

/// Which key an endpoint expects (RFC 8555 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRule {
    /// newAccount: the request carries its public key in `jwk`.
    Jwk,
    /// Everything else: `kid` names an existing, valid account.
    Kid,
    /// revokeCert: either (§7.6).
    Either,
}

/// A request that passed the §6 checks.
#[derive(Debug)]
pub struct Signed {
    pub jws: Jws,
    /// The account behind `kid`, when the request used one.
    pub account: Option<Account>,
    /// The key that verified the signature.
    pub jwk: Map<String, Value>,
}

impl Signed {
    /// The authenticated account; only call for [`KeyRule::Kid`] endpoints.
    pub fn account(&self) -> Result<&Account, Problem> {
        self.account
            .as_ref()
            .ok_or_else(|| Problem::malformed("this request must use \"kid\""))
    }

    /// RFC 8555 §6.3: POST-as-GET has an empty payload; anything else is malformed.
    pub fn require_post_as_get(&self) -> Result<(), Problem> {
        if self.jws.payload_empty {
            Ok(())
        } else {
            Err(Problem::malformed(
                "this resource is read with POST-as-GET (empty payload)",
            ))
        }
    }
}

/// Runs every §6 check on `req` and returns the verified request.
pub async fn authenticate(gw: &Gateway, req: &Incoming, rule: KeyRule) -> Result<Signed, Problem> {
    // RFC 8555 §6.2: requests are application/jose+json; anything else is 415.
    let ct = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.split(';').next().map(str::trim) != Some("application/jose+json") {
        return Err(Problem::malformed(format!(
            "Content-Type must be application/jose+json, not {ct:?}"
        ))
        .with_status(415));
    }
    let jws = Jws::parse(&req.body)?;
    jws.check_header()?;
    // RFC 8555 §6.4: the signed url must be the one requested.
    let expected = req.url(gw);
    if jws.protected.url.as_deref() != Some(expected.as_str()) {
        return Err(Problem::unauthorized(format!(
            "JWS url {:?} does not match the request URL {expected:?}",
            jws.protected.url.as_deref().unwrap_or("")
        )));
    }
    let nonce = jws.protected.nonce.as_deref();
    // Whether the nonce was fresh, when the account lookup redeemed it (sealed nonces).
    let mut redeemed = None;
    let (account, jwk) = match (&jws.protected.kid, &jws.protected.jwk, rule) {
        (Some(_), _, KeyRule::Jwk) => {
            return Err(Problem::malformed(
                "this request must carry \"jwk\", not \"kid\"",
            ))
        }
        (_, Some(_), KeyRule::Kid) => {
            return Err(Problem::malformed(
                "this request must carry \"kid\", not \"jwk\"",
            ))
        }
        (Some(kid), _, _) => {
            let (account, fresh) = account_for_kid(gw, kid, nonce).await?;
            redeemed = fresh;
            let jwk: Map<String, Value> = serde_json::from_str(&account.jwk)
                .map_err(|_| Problem::server_internal("stored account key is unreadable"))?;
            (Some(account), jwk)
        }
        (None, Some(jwk), _) => (None, jwk.clone()),
        (None, None, _) => return Err(Problem::malformed("JWS has neither \"jwk\" nor \"kid\"")),
    };
    jws.verify_cached(&jwk, &gw.verifiers)?;
    // Reported after the signature, so that a forged request learns nothing of nonces.
    let nonce = nonce.ok_or_else(|| Problem::bad_nonce("JWS protected header has no nonce"))?;
    let fresh = match redeemed {
        Some(fresh) => fresh,
        None => gw
            .nonces
            .redeem(nonce, gw.now(), &gw.store)
            .await
            .map_err(|e| store_problem(e, "nonce"))?,
    };
    if !fresh {
        return Err(Problem::bad_nonce(format!(
            "nonce {nonce:?} is unknown, expired or used"
        )));
    }
    Ok(Signed { jws, account, jwk })
}

/// The valid account `kid` names. When the request's `nonce` is one whose redemption writes to
/// the database (sealed nonces, PostgreSQL), it is redeemed in the same round trip and whether
/// it was fresh comes back too; otherwise that is left to the caller (`None`).
async fn account_for_kid(
    gw: &Gateway,
    kid: &str,
    nonce: Option<&str>,
) -> Result<(Account, Option<bool>), Problem> {
    let prefix = gw.account_url("");
    let id = kid
        .strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            Problem::account_does_not_exist(format!(
                "kid {kid:?} is not an account URL of this server"
            ))
        })?
        .to_string();
    let sealed = nonce.and_then(|n| Some((n.to_owned(), gw.nonces.sealed_expiry(n, gw.now())?)));
    let found = match sealed {
        Some((nonce, expires_at)) => gw
            .db(move |s| s.account_redeeming_nonce(&id, &nonce, expires_at))
            .await
            .map(|(account, fresh)| (account, Some(fresh))),
        None => gw.read(move |s| s.account(&id)).await.map(|a| (a, None)),
    };
    let (account, fresh) = found.map_err(|e| match e {
        crate::store::StoreError::NotFound => {
            Problem::account_does_not_exist(format!("no account at {kid}"))
        }
        other => store_problem(other, "account"),
    })?;
    // RFC 8555 §7.3.6: a deactivated account's requests are refused with unauthorized.
    if account.status != AccountStatus::Valid.as_str() {
        return Err(Problem::unauthorized(format!(
            "account is {}",
            account.status
        )));
    }
    Ok((account, fresh))
}

/// The thumbprint of a verified key, for lookups and key authorizations.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, Problem> {
    jws::thumbprint(jwk)
}
