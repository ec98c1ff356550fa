//! Account resources as HTTP: newAccount (RFC 8555 §7.3), account update and deactivation
//! (§7.3.2, §7.3.6), the orders list (§7.1.2.1) and key rollover (§7.3.5), whose inner JWS is
//! checked here. What they decide is `crate::authority::accounts`'s.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::auth::{authenticate, thumbprint, KeyRule};
use super::{rfc3339, Incoming, Reply};
use crate::acme::{AccountObject, Problem};
use crate::authority::accounts::{self, KeyChange, NewAccount, Registered};
use crate::authority::{store_problem, Gateway};
use crate::jws::Jws;
use crate::store::Account;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AccountRequest {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<Value>,
    #[serde(default)]
    status: Option<String>,
}

fn account_object(gw: &Gateway, a: &Account) -> Result<AccountObject, Problem> {
    let contact: Vec<String> = serde_json::from_str(&a.contact).unwrap_or_default();
    let key: Value = serde_json::from_str(&a.jwk).unwrap_or(Value::Null);
    Ok(AccountObject {
        status: a.status,
        contact,
        terms_of_service_agreed: Some(a.tos_agreed),
        orders: format!("{}/orders", gw.account_url(&a.id)),
        key: Some(key),
        created_at: Some(rfc3339(a.created_at)),
    })
}

fn account_reply(gw: &Gateway, a: &Account, status: StatusCode) -> Result<Reply, Problem> {
    Ok(Reply::json(status, &account_object(gw, a)?).location(gw.account_url(&a.id)))
}

pub async fn new_account(gw: &Gateway, req: &Incoming) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Jwk).await?;
    let body: AccountRequest = signed.jws.json_payload()?;
    let request = NewAccount {
        thumbprint: thumbprint(&signed.jwk)?,
        jwk: signed.jwk.clone(),
        contact: body.contact.unwrap_or_default(),
        terms_of_service_agreed: body.terms_of_service_agreed,
        only_return_existing: body.only_return_existing,
        external_account_binding: body.external_account_binding,
    };
    match accounts::register(gw, request).await? {
        // RFC 8555 §7.3.1: an existing key answers 200 with the account's URL.
        Registered::Existing(account) => account_reply(gw, &account, StatusCode::OK),
        Registered::Created(account) => account_reply(gw, &account, StatusCode::CREATED),
    }
}

/// Checks that the authenticated account is the one in the URL.
fn own_account<'a>(signed: &'a super::auth::Signed, id: &str) -> Result<&'a Account, Problem> {
    let account = signed.account()?;
    if account.id != id {
        return Err(Problem::unauthorized(
            "a request may only concern the signing account",
        ));
    }
    Ok(account)
}

pub async fn account(gw: &Gateway, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let account = own_account(&signed, id)?.clone();
    if signed.jws.payload_empty {
        return account_reply(gw, &account, StatusCode::OK);
    }
    let body: AccountRequest = signed.jws.json_payload()?;
    let updated = accounts::update(gw, account, body.contact, body.status.as_deref()).await?;
    account_reply(gw, &updated, StatusCode::OK)
}

pub async fn orders(gw: &Gateway, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    signed.require_post_as_get()?;
    let account = own_account(&signed, id)?.clone();
    let cursor = req
        .query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("cursor=")))
        .map(str::to_string);
    let limit = i64::from(gw.config.acme.orders_per_page.max(1));
    let aid = account.id.clone();
    let page = gw
        .db(move |s| s.orders_for_account(&aid, cursor.as_deref(), limit))
        .await
        .map_err(|e| store_problem(e, "orders"))?;
    let urls: Vec<String> = page.iter().map(|o| gw.order_url(&o.id)).collect();
    let mut reply = Reply::json(StatusCode::OK, &serde_json::json!({ "orders": urls }));
    // RFC 8555 §7.1.2.1: further pages are linked with rel="next".
    if page.len() as i64 == limit {
        if let Some(last) = page.last() {
            let next = format!("{}/orders?cursor={}", gw.account_url(&account.id), last.id);
            reply = reply.link(&next, "next");
        }
    }
    Ok(reply)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: Map<String, Value>,
}

/// RFC 8555 §7.3.5: the outer JWS is signed by the old key (`kid`), the inner by the new key
/// (`jwk`), the inner payload names the account and the old key.
pub async fn key_change(gw: &Gateway, req: &Incoming) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let account = signed.account()?.clone();
    let inner = Jws::parse(&signed.jws.payload)
        .map_err(|p| Problem::malformed(format!("keyChange inner JWS: {}", p.detail)))?;
    inner.check_header()?;
    let new_jwk = inner
        .protected
        .jwk
        .clone()
        .filter(|_| inner.protected.kid.is_none())
        .ok_or_else(|| {
            Problem::malformed("keyChange inner JWS must carry the new key as \"jwk\"")
        })?;
    if inner.protected.url != signed.jws.protected.url {
        return Err(Problem::malformed(
            "keyChange inner JWS url must equal the outer url",
        ));
    }
    if inner.protected.nonce.is_some() {
        return Err(Problem::malformed(
            "keyChange inner JWS must not carry a nonce",
        ));
    }
    inner.verify(&new_jwk)?;
    let body: KeyChangePayload = inner.json_payload()?;
    match accounts::change_key(gw, account, &body.account, &body.old_key, new_jwk).await? {
        KeyChange::Changed(updated) => account_reply(gw, &updated, StatusCode::OK),
        KeyChange::InUse(holder) => {
            // RFC 8555 §7.3.5: 409 with the Location of the account that holds the key.
            let mut reply = Reply::problem(
                &Problem::malformed("the new key is already in use by another account")
                    .with_status(409),
            );
            if let Some(h) = holder {
                reply = reply.location(gw.account_url(&h.id));
            }
            Ok(reply)
        }
    }
}
