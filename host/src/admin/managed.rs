//! Managed certificates, as operators handle them: list with their state, next renewal and
//! last deployment outcome, get, create, delete, renew now, pause and resume. The policy is
//! `crate::authority::managed`'s; this only decodes and encodes.

use std::sync::Arc;

use http::StatusCode;

use super::views::{self, Paging};
use super::{AdminRequest, ApiError};
use crate::authority::managed::{self, ManagedError};
use crate::authority::Gateway;
use crate::config::ManagedConfig;
use crate::reply::Reply;
use crate::store::{Page, StoreError};

fn store_error(e: StoreError) -> ApiError {
    ApiError::store(e, "managed certificate")
}

fn managed_error(e: ManagedError) -> ApiError {
    match e {
        ManagedError::BadRequest(detail) => ApiError::bad_request(detail),
        ManagedError::Conflict(detail) => ApiError::conflict(detail),
        ManagedError::Store(StoreError::Conflict(_)) => {
            ApiError::conflict("a managed certificate of that name exists")
        }
        ManagedError::Store(e) => store_error(e),
    }
}

pub async fn list(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let paging = Paging::from_query(&req.query, gw.config.admin.per_page)?;
    let rows = managed::list(gw).await.map_err(store_error)?;
    let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let request = paging.request();
    let items = rows
        .into_iter()
        .skip(usize::try_from(request.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(request.limit).unwrap_or(0))
        .collect();
    Ok(paging.reply(Page { items, total }, views::managed))
}

pub async fn get(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let row = managed::get(gw, req.param(0)).await.map_err(store_error)?;
    Ok(Reply::json(StatusCode::OK, &views::managed(&row)))
}

pub async fn create(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let spec: ManagedConfig = req.json()?;
    let row = managed::create(gw, spec, &req.caller.actor())
        .await
        .map_err(managed_error)?;
    Ok(Reply::json(StatusCode::CREATED, &views::managed(&row)))
}

pub async fn delete(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let name = req.param(0);
    managed::delete(gw, name, &req.caller.actor())
        .await
        .map_err(managed_error)?;
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({ "name": name, "deleted": true }),
    ))
}

/// Renew now: answers with the certificate as it stands; the renewal follows within a second.
pub async fn renew(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let name = req.param(0);
    managed::renew_now(gw, name, &req.caller.actor())
        .await
        .map_err(store_error)?;
    let mut reply = get(gw, req).await?;
    reply.status = StatusCode::ACCEPTED;
    Ok(reply)
}

pub async fn pause(gw: &Arc<Gateway>, req: &AdminRequest, paused: bool) -> Result<Reply, ApiError> {
    managed::set_paused(gw, req.param(0), paused, &req.caller.actor())
        .await
        .map_err(store_error)?;
    get(gw, req).await
}
