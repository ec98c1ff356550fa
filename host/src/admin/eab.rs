//! External Account Binding keys (RFC 8555 §7.3.4): created (the HMAC key shown once), listed
//! without their secrets, revoked.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::views::Paging;
use super::{AdminRequest, ApiError};
use crate::authority::Gateway;
use crate::ids;
use crate::reply::{rfc3339, Reply};
use crate::store::{EabKey, Page};

/// A new, unused key with a random kid and a 256-bit HMAC key, limited to the names matching
/// `allowed_names` (every name when empty) and to `profile` (any when empty). Patterns that do
/// not parse and unknown profiles are refused.
pub fn new_key(
    label: &str,
    allowed_names: &[String],
    profile: &str,
    profiles: &[crate::ca::Profile],
    now: i64,
) -> Result<EabKey, ApiError> {
    crate::acme::name_policy::parse_all(allowed_names)
        .map_err(|e| ApiError::bad_request(format!("allowed_names: {e}")))?;
    if !profile.is_empty() && !profiles.iter().any(|p| p.name == profile) {
        let known: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "unknown profile {profile:?}; known: {known:?}"
        )));
    }
    use ring::rand::SecureRandom;
    let mut secret = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| ApiError::internal("the OS random generator failed"))?;
    Ok(EabKey {
        kid: format!("eab-{}", ids::new_id()),
        hmac_key: B64.encode(secret),
        label: label.to_owned(),
        account_id: None,
        revoked: false,
        created_at: now,
        allowed_names: serde_json::to_string(allowed_names).unwrap_or_else(|_| "[]".into()),
        profile: profile.to_owned(),
    })
}

/// `unused`, `bound` (an account was created with it) or `revoked`.
pub fn state(key: &EabKey) -> &'static str {
    if key.revoked {
        "revoked"
    } else if key.account_id.is_some() {
        "bound"
    } else {
        "unused"
    }
}

fn view(key: &EabKey) -> Value {
    serde_json::json!({
        "kid": key.kid,
        "label": key.label,
        "state": state(key),
        "account_id": key.account_id,
        "created_at": rfc3339(key.created_at),
        "allowed_names": serde_json::from_str::<Value>(&key.allowed_names).unwrap_or_default(),
        "profile": (!key.profile.is_empty()).then_some(&key.profile),
    })
}

pub async fn list(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let paging = Paging::from_query(&req.query, gw.config.admin.per_page)?;
    let mut keys = gw
        .db(|s| s.list_eab_keys())
        .await
        .map_err(|e| ApiError::store(e, "EAB keys"))?;
    // Newest first, like every other listing; there are few keys, so they are paged here.
    keys.reverse();
    let range = paging.request();
    let total = keys.len() as i64;
    let items = keys
        .into_iter()
        .skip(usize::try_from(range.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(range.limit).unwrap_or(0))
        .collect();
    Ok(paging.reply(Page { items, total }, view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    label: String,
    /// Name patterns (`host.example`, `*.zone`, IP, CIDR); empty allows every name.
    #[serde(default)]
    allowed_names: Vec<String>,
    /// Pins the profile of the key's orders; empty lets them choose.
    #[serde(default)]
    profile: String,
}

pub async fn create(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let body: CreateBody = req.json()?;
    let key = new_key(
        &body.label,
        &body.allowed_names,
        &body.profile,
        &gw.profiles,
        gw.now(),
    )?;
    let row = key.clone();
    gw.db_as(&req.caller.actor(), move |s| s.insert_eab_key(&row))
        .await
        .map_err(|e| ApiError::store(e, "EAB key"))?;
    tracing::info!(kid = %key.kid, actor = %req.caller.actor(), "EAB key created");
    let mut answer = view(&key);
    answer["hmac_key"] = Value::from(key.hmac_key.clone());
    Ok(Reply::json(StatusCode::CREATED, &answer))
}

pub async fn revoke(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let kid = req.param(0).to_owned();
    let key = {
        let kid = kid.clone();
        gw.db(move |s| s.eab_key(&kid))
            .await
            .map_err(|e| ApiError::store(e, "EAB key"))?
    };
    if key.revoked {
        return Err(ApiError::conflict(format!(
            "EAB key {kid} is already revoked"
        )));
    }
    gw.db_as(&req.caller.actor(), move |s| s.revoke_eab_key(&kid))
        .await
        .map_err(|e| ApiError::store(e, "EAB key"))?;
    tracing::info!(kid = %key.kid, actor = %req.caller.actor(), "EAB key revoked");
    Ok(Reply::json(
        StatusCode::OK,
        &view(&EabKey {
            revoked: true,
            ..key
        }),
    ))
}
