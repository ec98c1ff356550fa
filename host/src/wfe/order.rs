//! Order resources: newOrder, reading an order and finalize (RFC 8555 §7.4), as HTTP. What
//! they decide is `crate::authority::orders`'s; this file authenticates, decodes and encodes.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use super::auth::{authenticate, KeyRule};
use super::{rfc3339, Incoming, Reply};
use crate::acme::{Identifier, OrderObject, OrderStatus, Problem};
use crate::authority::orders::{self, NewOrder, OrderView};
use crate::authority::Gateway;

/// Seconds a client is asked to wait before polling a processing order again.
const PROCESSING_RETRY_AFTER: u64 = 1;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrderPayload {
    identifiers: Vec<Identifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    /// RFC 9773 §5.
    #[serde(default)]
    replaces: Option<String>,
}

pub async fn new_order(gw: &Gateway, req: &Incoming) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let account = signed.account()?;
    let body: NewOrderPayload = signed.jws.json_payload()?;
    if body.not_before.is_some() || body.not_after.is_some() {
        // RFC 8555 §7.4 lets a server refuse these; lifetimes come from profiles here.
        return Err(Problem::malformed(
            "notBefore/notAfter are not supported; choose a profile from the directory instead",
        ));
    }
    let request = NewOrder {
        identifiers: body.identifiers,
        profile: body.profile,
        replaces: body.replaces,
    };
    let view = orders::create(gw, account, request).await?;
    Ok(Reply::json(StatusCode::CREATED, &order_object(gw, &view))
        .location(gw.order_url(&view.order.id)))
}

fn order_object(gw: &Gateway, view: &OrderView) -> OrderObject {
    let order = &view.order;
    OrderObject {
        status: view.status,
        expires: rfc3339(order.expires),
        identifiers: serde_json::from_str(&order.identifiers).unwrap_or_default(),
        not_before: order.not_before.map(rfc3339),
        not_after: order.not_after.map(rfc3339),
        error: order
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok()),
        authorizations: view
            .authorizations
            .iter()
            .map(|a| gw.authz_url(&a.id))
            .collect(),
        finalize: format!("{}/finalize", gw.order_url(&order.id)),
        certificate: order.certificate_id.as_deref().map(|id| gw.cert_url(id)),
        profile: Some(order.profile.clone()),
        replaces: order.replaces.clone(),
    }
}

fn order_reply(gw: &Gateway, view: &OrderView) -> Reply {
    let mut reply =
        Reply::json(StatusCode::OK, &order_object(gw, view)).location(gw.order_url(&view.order.id));
    if view.status == OrderStatus::Processing {
        reply = reply.header("retry-after", PROCESSING_RETRY_AFTER.to_string());
    }
    reply
}

pub async fn get_order(gw: &Gateway, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    signed.require_post_as_get()?;
    let view = orders::current(gw, signed.account()?, id).await?;
    Ok(order_reply(gw, &view))
}

#[derive(Deserialize)]
struct FinalizePayload {
    csr: String,
}

pub async fn finalize(gw: &Arc<Gateway>, req: &Incoming, id: &str) -> Result<Reply, Problem> {
    let signed = authenticate(gw, req, KeyRule::Kid).await?;
    let body: FinalizePayload = signed.jws.json_payload()?;
    let is_account_key = |spki: &[u8]| signed.jws.signed_by_spki(&signed.jwk, spki);
    let view = orders::finalize(gw, signed.account()?, id, &body.csr, is_account_key).await?;
    Ok(order_reply(gw, &view))
}
