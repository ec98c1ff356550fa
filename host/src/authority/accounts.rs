//! Accounts (RFC 8555 §7.3): registration under the server's terms and External Account
//! Binding policy (§7.3.4), updates and deactivation (§7.3.2, §7.3.6), and key rollover once
//! the front end has checked the request's signatures (§7.3.5).

use serde_json::{Map, Value};

use super::{acme_actor, store_problem, Gateway};
use crate::acme::{AccountStatus, Problem};
use crate::ids;
use crate::jws;
use crate::store::{Account, StoreError};

/// Most contact URLs one account may list.
const MAX_CONTACTS: usize = 10;

/// A newAccount request, decoded, with the key that signed it.
#[derive(Debug)]
pub struct NewAccount {
    pub jwk: Map<String, Value>,
    /// RFC 7638 thumbprint of `jwk`.
    pub thumbprint: String,
    pub contact: Vec<String>,
    pub terms_of_service_agreed: Option<bool>,
    pub only_return_existing: bool,
    pub external_account_binding: Option<Value>,
}

/// What newAccount came to.
#[derive(Debug)]
pub enum Registered {
    /// The key already has this account (§7.3.1).
    Existing(Account),
    Created(Account),
}

/// newAccount: the account of the request's key, or a new one (§7.3, §7.3.4).
pub async fn register(gw: &Gateway, request: NewAccount) -> Result<Registered, Problem> {
    let lookup = request.thumbprint.clone();
    match gw.read(move |s| s.account_by_thumbprint(&lookup)).await {
        Ok(existing) => return Ok(Registered::Existing(existing)),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(store_problem(e, "account")),
    }
    if request.only_return_existing {
        return Err(Problem::account_does_not_exist(
            "no account exists with this key",
        ));
    }
    check_contacts(&request.contact)?;
    let tos = &gw.config.acme.terms_of_service;
    if !tos.is_empty() && request.terms_of_service_agreed != Some(true) {
        return Err(Problem::user_action_required(format!(
            "agree to the terms of service at {tos} (termsOfServiceAgreed: true)"
        )));
    }
    let eab_kid = match &request.external_account_binding {
        Some(eab) => {
            let kid = verify_eab(gw, eab, &request.jwk).await?;
            // A key whose policy cannot be applied binds no account.
            super::orders::eab_policy(gw, &kid).await?;
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
        jwk_thumbprint: request.thumbprint,
        jwk: Value::Object(request.jwk).to_string(),
        status: AccountStatus::Valid,
        contact: serde_json::to_string(&request.contact).unwrap_or_else(|_| "[]".into()),
        tos_agreed: request.terms_of_service_agreed.unwrap_or(false),
        eab_kid,
        created_at: gw.now(),
    };
    let row = account.clone();
    match gw
        .write_as(&acme_actor(&account.id), move |s| s.insert_account(&row))
        .await
    {
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
            return Ok(Registered::Existing(existing));
        }
        Err(e) => return Err(store_problem(e, "account")),
    }
    tracing::info!(account = %account.id, eab = ?account.eab_kid, "account created");
    Ok(Registered::Created(account))
}

/// An account update (§7.3.2): new contacts, and deactivation, the one status change a client
/// may ask for (§7.3.6).
pub async fn update(
    gw: &Gateway,
    account: Account,
    contact: Option<Vec<String>>,
    status: Option<&str>,
) -> Result<Account, Problem> {
    let mut stored_contact = account.contact.clone();
    let mut new_status = account.status;
    if let Some(c) = &contact {
        check_contacts(c)?;
        stored_contact = serde_json::to_string(c).unwrap_or_else(|_| "[]".into());
    }
    match status {
        None => {}
        Some("deactivated") => new_status = AccountStatus::Deactivated,
        Some(other) => {
            return Err(Problem::malformed(format!(
                "account status can only be changed to \"deactivated\", not {other:?}"
            )))
        }
    }
    let (aid, c) = (account.id.clone(), stored_contact.clone());
    gw.db_as(&acme_actor(&account.id), move |s| {
        s.update_account(&aid, &c, new_status)
    })
    .await
    .map_err(|e| store_problem(e, "account"))?;
    if new_status != account.status {
        tracing::info!(account = %account.id, "account deactivated");
    }
    Ok(Account {
        contact: stored_contact,
        status: new_status,
        ..account
    })
}

/// What a key rollover came to.
#[derive(Debug)]
pub enum KeyChange {
    Changed(Account),
    /// The new key belongs to another account (§7.3.5: 409 naming it), found or not.
    InUse(Option<Account>),
}

/// Key rollover (§7.3.5) of `account` to `new_jwk`, once the front end has verified both
/// signatures: `named_account` and `old_key` are what the inner payload says.
pub async fn change_key(
    gw: &Gateway,
    account: Account,
    named_account: &str,
    old_key: &Map<String, Value>,
    new_jwk: Map<String, Value>,
) -> Result<KeyChange, Problem> {
    if named_account != gw.account_url(&account.id) {
        return Err(Problem::unauthorized("keyChange names another account"));
    }
    if jws::thumbprint(old_key)? != account.jwk_thumbprint {
        return Err(Problem::unauthorized(
            "keyChange oldKey is not the account's current key",
        ));
    }
    let new_tp = jws::thumbprint(&new_jwk)?;
    let jwk_text = Value::Object(new_jwk).to_string();
    let (aid, jwk, tp) = (account.id.clone(), jwk_text.clone(), new_tp.clone());
    match gw
        .db_as(&acme_actor(&account.id), move |s| {
            s.update_account_key(&aid, &jwk, &tp)
        })
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            let holder = gw.db(move |s| s.account_by_thumbprint(&new_tp)).await.ok();
            return Ok(KeyChange::InUse(holder));
        }
        Err(e) => return Err(store_problem(e, "account")),
    }
    tracing::info!(account = %account.id, "account key changed");
    Ok(KeyChange::Changed(Account {
        jwk: jwk_text,
        jwk_thumbprint: new_tp,
        ..account
    }))
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
