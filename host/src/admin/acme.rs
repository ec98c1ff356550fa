//! ACME accounts and their orders, as operators see them: list, get, deactivate an account.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;

use super::views::{self, Paging};
use super::{AdminRequest, ApiError};
use crate::acme::AccountStatus;
use crate::authority::Gateway;
use crate::reply::Reply;
use crate::store::OrderFilter;

/// Account and order states a filter may name.
const ACCOUNT_STATES: &[&str] = &["valid", "deactivated", "revoked"];
const ORDER_STATES: &[&str] = &["pending", "ready", "processing", "valid", "invalid"];

/// The query's `key`, which must be one of `allowed` when present.
pub(super) fn state_filter(
    req: &AdminRequest,
    key: &str,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    match req.query.get(key) {
        None => Ok(None),
        Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v.clone())),
        Some(v) => Err(ApiError::bad_request(format!(
            "{key} {v:?} is not one of {allowed:?}"
        ))),
    }
}

/// The `status` query parameter as a status of `T`, whose names are `allowed`.
pub(super) fn status_filter<T: std::str::FromStr<Err = String>>(
    req: &AdminRequest,
    allowed: &[&str],
) -> Result<Option<T>, ApiError> {
    state_filter(req, "status", allowed)?
        .map(|s| s.parse().map_err(ApiError::bad_request))
        .transpose()
}

pub async fn list_accounts(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let paging = Paging::from_query(&req.query, gw.config.admin.per_page)?;
    let status = status_filter(req, ACCOUNT_STATES)?;
    let (page, counts) = gw
        .db(move |s| {
            let page = s.list_accounts(status, paging.request())?;
            let ids: Vec<String> = page.items.iter().map(|a| a.id.clone()).collect();
            let counts: HashMap<String, i64> = s.order_counts(&ids)?.into_iter().collect();
            Ok((page, counts))
        })
        .await
        .map_err(|e| ApiError::store(e, "accounts"))?;
    // Each account with its number of orders: one grouped count for the page, not per row.
    Ok(paging.reply(page, |a| {
        let mut view = views::account(a);
        view["orders"] = counts.get(&a.id).copied().unwrap_or(0).into();
        view
    }))
}

pub async fn get_account(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let id = req.param(0).to_owned();
    let account = gw
        .db(move |s| s.account(&id))
        .await
        .map_err(|e| ApiError::store(e, "account"))?;
    Ok(Reply::json(StatusCode::OK, &views::account(&account)))
}

/// Deactivates an account (RFC 8555 §7.3.6 as if the subscriber asked): its key can no longer
/// order or revoke; its certificates stay valid until revoked one by one.
pub async fn deactivate_account(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let id = req.param(0).to_owned();
    let account = {
        let id = id.clone();
        gw.db(move |s| s.account(&id))
            .await
            .map_err(|e| ApiError::store(e, "account"))?
    };
    if account.status != AccountStatus::Valid {
        return Err(ApiError::conflict(format!(
            "account {id} is {}; only a valid account can be deactivated",
            account.status
        )));
    }
    let contact = account.contact.clone();
    gw.db_as(&req.caller.actor(), move |s| {
        s.update_account(&id, &contact, AccountStatus::Deactivated)
    })
    .await
    .map_err(|e| ApiError::store(e, "account"))?;
    tracing::info!(account = %account.id, actor = %req.caller.actor(), "account deactivated by an admin");
    let updated = crate::store::Account {
        status: AccountStatus::Deactivated,
        ..account
    };
    Ok(Reply::json(StatusCode::OK, &views::account(&updated)))
}

pub async fn list_orders(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let paging = Paging::from_query(&req.query, gw.config.admin.per_page)?;
    let filter = OrderFilter {
        account_id: req.query.get("account").cloned(),
        status: status_filter(req, ORDER_STATES)?,
    };
    let page = gw
        .db(move |s| s.list_orders(&filter, paging.request()))
        .await
        .map_err(|e| ApiError::store(e, "orders"))?;
    let now = gw.now();
    Ok(paging.reply(page, |o| views::order(o, now)))
}

/// One order with its certificate's serial, its authorizations and their challenges, each
/// with the problem document that failed it: what an operator needs to tell a subscriber why
/// an order is invalid.
pub async fn get_order(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let id = req.param(0).to_owned();
    let (order, authorizations, serial) = gw
        .db(move |s| {
            let order = s.order(&id)?;
            // The certificate by its serial too: the one name operators and the console use.
            let serial = match &order.certificate_id {
                Some(cert) => Some(s.certificate(cert)?.serial),
                None => None,
            };
            let authorizations = s
                .authorizations_for_order(&id)?
                .into_iter()
                .map(|a| {
                    let challenges = s.challenges_for_authorization(&a.id)?;
                    Ok((a, challenges))
                })
                .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
            Ok((order, authorizations, serial))
        })
        .await
        .map_err(|e| ApiError::store(e, "order"))?;
    let now = gw.now();
    let mut view = views::order(&order, now);
    view["certificate_serial"] = serial.into();
    view["authorizations"] = authorizations
        .iter()
        .map(|(a, challenges)| views::authorization(a, challenges, now))
        .collect();
    Ok(Reply::json(StatusCode::OK, &view))
}
