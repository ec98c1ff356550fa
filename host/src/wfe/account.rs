//! Accounts: newAccount (RFC 8555 §7.3) with External Account Binding (§7.3.4), account update
//! and deactivation (§7.3.2, §7.3.6), the orders list (§7.1.2.1) and key rollover (§7.3.5).

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::auth::{authenticate, thumbprint, KeyRule};
use super::{rfc3339, Incoming, Reply};
use crate::acme::{AccountObject, AccountStatus, Problem};
use crate::authority::{store_problem, Gateway};
use crate::ids;
use crate::jws::{self, Jws};
use crate::store::{Account, StoreError};

/// Most contact URLs one account may list.
const MAX_CONTACTS: usize = 10;

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

/// RFC 8555 §7.3: contacts are `mailto:` URLs without hfields; other schemes are unsupported.
fn check_contacts(contacts: &[String]) -> Result<(), Problem> {
    if contacts.len() > MAX_CONTACTS {
        return Err(Problem::invalid_contact(format!(
            "at most {MAX_CONTACTS} contacts are allowed"
        )));
    }
    for c in contacts {
        let Some(addr) = c.strip_prefix("mailto:") else {
            return Err(Problem::unsupported_contact(format!(
                "contact {c:?} is not a mailto: URL; only e-mail contacts are supported"
            )));
        };
        if addr.contains('?') {
            return Err(Problem::invalid_contact(format!(
                "contact {c:?} has hfields, which RFC 8555 §7.3 forbids"
            )));
        }
        if addr.contains(',') {
            return Err(Problem::invalid_contact(format!(
                "contact {c:?} lists several addresses"
            )));
        }
        let valid = addr.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        });
        if !valid || addr.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(Problem::invalid_contact(format!(
                "contact {c:?} is not a valid e-mail address"
            )));
        }
    }
    Ok(())
}

pub async fn new_account(gw: &Gateway, req: &Incoming) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Jwk).await?;
    let body: AccountRequest = signed.jws.json_payload()?;
    let tp = thumbprint(&signed.jwk)?;
    let lookup = tp.clone();
    match gw.db(move |s| s.account_by_thumbprint(&lookup)).await {
        // RFC 8555 §7.3.1: an existing key answers 200 with the account's URL.
        Ok(existing) => return account_reply(gw, &existing, StatusCode::OK),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(store_problem(e, "account")),
    }
    if body.only_return_existing {
        return Err(Problem::account_does_not_exist(
            "no account exists with this key",
        ));
    }
    let contact = body.contact.unwrap_or_default();
    check_contacts(&contact)?;
    if !gw.config.acme.terms_of_service.is_empty() && body.terms_of_service_agreed != Some(true) {
        return Err(Problem::user_action_required(format!(
            "agree to the terms of service at {} (termsOfServiceAgreed: true)",
            gw.config.acme.terms_of_service
        )));
    }
    let eab_kid = match body.external_account_binding {
        Some(eab) => {
            let kid = verify_eab(gw, &eab, &signed.jwk).await?;
            // A key whose policy cannot be applied binds no account.
            crate::authority::orders::eab_policy(gw, &kid).await?;
            Some(kid)
        }
        None if gw.config.acme.eab_required => {
            return Err(Problem::external_account_required(
                "this server requires External Account Binding (RFC 8555 §7.3.4)",
            ))
        }
        None => None,
    };
    let account = Account {
        id: ids::new_id(),
        jwk_thumbprint: tp,
        jwk: Value::Object(signed.jwk.clone()).to_string(),
        status: AccountStatus::Valid,
        contact: serde_json::to_string(&contact).unwrap_or_else(|_| "[]".into()),
        tos_agreed: body.terms_of_service_agreed.unwrap_or(false),
        eab_kid,
        created_at: gw.now(),
    };
    let row = account.clone();
    let actor = crate::authority::acme_actor(&account.id);
    match gw.db_as(&actor, move |s| s.insert_account(&row)).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) if account.eab_kid.is_some() => {
            return Err(Problem::unauthorized(
                "external account key is already bound to another account",
            ))
        }
        Err(StoreError::Conflict(_)) => {
            // A concurrent newAccount with the same key won; answer as for an existing key.
            let tp = account.jwk_thumbprint.clone();
            let existing = gw
                .db(move |s| s.account_by_thumbprint(&tp))
                .await
                .map_err(|e| store_problem(e, "account"))?;
            return account_reply(gw, &existing, StatusCode::OK);
        }
        Err(e) => return Err(store_problem(e, "account")),
    }
    tracing::info!(account = %account.id, eab = ?account.eab_kid, "account created");
    account_reply(gw, &account, StatusCode::CREATED)
}

async fn verify_eab(
    gw: &Gateway,
    eab: &Value,
    jwk: &Map<String, Value>,
) -> Result<String, Problem> {
    let kid = eab
        .get("protected")
        .and_then(Value::as_str)
        .and_then(|p| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
        .and_then(|h| h.get("kid").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| Problem::malformed("externalAccountBinding has no readable kid"))?;
    let lookup = kid.clone();
    let key = match gw.db(move |s| s.eab_key(&lookup)).await {
        Ok(k) if !k.revoked && k.account_id.is_none() => {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&k.hmac_key)
                .ok()
        }
        Ok(_) | Err(StoreError::NotFound) => None,
        Err(e) => return Err(store_problem(e, "EAB key")),
    };
    jws::verify_eab(eab, &gw.url("/new-account"), jwk, |k| {
        (k == kid).then_some(key).flatten()
    })
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
    let mut contact = account.contact.clone();
    let mut status = account.status;
    if let Some(c) = &body.contact {
        check_contacts(c)?;
        contact = serde_json::to_string(c).unwrap_or_else(|_| "[]".into());
    }
    match body.status.as_deref() {
        None => {}
        // RFC 8555 §7.3.6: the client may only deactivate.
        Some("deactivated") => status = AccountStatus::Deactivated,
        Some(other) => {
            return Err(Problem::malformed(format!(
                "account status can only be changed to \"deactivated\", not {other:?}"
            )))
        }
    }
    let (aid, c, st) = (account.id.clone(), contact.clone(), status);
    gw.db_as(&crate::authority::acme_actor(&account.id), move |s| {
        s.update_account(&aid, &c, st)
    })
    .await
    .map_err(|e| store_problem(e, "account"))?;
    if status != account.status {
        tracing::info!(account = %account.id, "account deactivated");
    }
    let updated = Account {
        contact,
        status,
        ..account
    };
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
struct KeyChange {
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
    let body: KeyChange = inner.json_payload()?;
    if body.account != gw.account_url(&account.id) {
        return Err(Problem::unauthorized("keyChange names another account"));
    }
    if thumbprint(&body.old_key)? != account.jwk_thumbprint {
        return Err(Problem::unauthorized(
            "keyChange oldKey is not the account's current key",
        ));
    }
    let new_tp = thumbprint(&new_jwk)?;
    let jwk_text = Value::Object(new_jwk).to_string();
    let updated = Account {
        jwk: jwk_text.clone(),
        jwk_thumbprint: new_tp.clone(),
        ..account.clone()
    };
    let (aid, tp) = (account.id.clone(), new_tp.clone());
    match gw
        .db_as(&crate::authority::acme_actor(&account.id), move |s| {
            s.update_account_key(&aid, &jwk_text, &tp)
        })
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            // RFC 8555 §7.3.5: 409 with the Location of the account that holds the key.
            let holder = gw.db(move |s| s.account_by_thumbprint(&new_tp)).await.ok();
            let mut reply = Reply::problem(
                &Problem::malformed("the new key is already in use by another account")
                    .with_status(409),
            );
            if let Some(h) = holder {
                reply = reply.location(gw.account_url(&h.id));
            }
            return Ok(reply);
        }
        Err(e) => return Err(store_problem(e, "account")),
    }
    tracing::info!(account = %account.id, "account key changed");
    account_reply(gw, &updated, StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_rules() {
        assert!(check_contacts(&["mailto:ops@example.org".into()]).is_ok());
        let kind = |c: &str| check_contacts(&[c.to_string()]).unwrap_err().kind;
        use crate::acme::ProblemType as T;
        assert_eq!(kind("tel:+1555"), T::UnsupportedContact);
        assert_eq!(kind("mailto:a@b.org?subject=x"), T::InvalidContact);
        assert_eq!(kind("mailto:nobody"), T::InvalidContact);
        assert_eq!(kind("mailto:a@b.org,c@d.org"), T::InvalidContact);
        assert_eq!(kind("mailto:a b@c.org"), T::InvalidContact);
        let many: Vec<String> = (0..11).map(|i| format!("mailto:a{i}@b.org")).collect();
        assert_eq!(check_contacts(&many).unwrap_err().kind, T::InvalidContact);
    }
}
