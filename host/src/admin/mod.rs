//! The mTLS admin API: its own listener, where only a client certificate that chains to the
//! gateway's CA (or a configured admin CA) and is not revoked gets an answer.
//!
//! Layout: [`tls`] builds the listener's rustls configuration (client certificates checked
//! against the CA and the current CRL); [`auth`] turns the verified certificate into a
//! [`Caller`] with a role; [`routes`] is the one table of routes, which dispatch, the tests and
//! the OpenAPI check all read; the handlers live in one file per resource family
//! (`acme` for accounts and orders, `certificates`, `eab`, `client`, `operations`).
//!
//! The operator console ([`console`], under `/console/`) is served by this listener behind the
//! same certificate check, and reads and acts only through [`call`]: the routes of this table.
//!
//! Unlike the ACME side, answers are plain JSON: lists are `{items, total, page, per_page}`,
//! errors `{error, detail}` ([`ApiError`]).

mod acme;
pub mod auth;
mod certificates;
pub mod client;
mod console;
pub mod eab;
mod error;
pub mod keygen;
mod managed;
mod operations;
pub mod routes;
mod summary;
pub mod tls;
mod views;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};

use crate::authority::Gateway;
use crate::reply::{Body, Reply};

pub use auth::{Caller, Role};
pub use error::ApiError;
pub use routes::{Route, ROUTES};

/// A request as the admin handlers see it: who asks, the path parameters of the matched route,
/// the query and the body (already size-limited).
#[derive(Debug)]
pub struct AdminRequest {
    pub caller: Caller,
    pub params: Vec<String>,
    pub query: BTreeMap<String, String>,
    pub body: Bytes,
}

impl AdminRequest {
    /// The `n`th path parameter of the route (`{id}`, `{serial}`, ...).
    pub fn param(&self, n: usize) -> &str {
        self.params.get(n).map(String::as_str).unwrap_or_default()
    }

    /// The body as JSON of type `T`; an empty body is `{}`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.is_empty() {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
    }
}

/// Entry point for every HTTP request on the admin listener. `peer` is the leaf certificate
/// the client presented (already verified by the TLS layer), if any.
pub async fn handle<B>(
    gw: Arc<Gateway>,
    peer: Option<Arc<Vec<u8>>>,
    req: Request<B>,
) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let route = routes::find(parts.method.as_str(), &path);
    let for_console = console::serves(&path);
    let label = match &route {
        Some((r, _)) => r.path,
        None if for_console => console::PREFIX,
        None => "other",
    };
    let reply = match serve(&gw, peer, parts, body, route).await {
        Ok(reply) => reply,
        // A browser gets its refusal as a page (with the console's security headers).
        Err(e) if for_console => console::error_page(&e),
        Err(e) => e.into_reply(),
    };
    gw.metrics.request(label, reply.status.as_u16());
    tracing::debug!(%path, status = reply.status.as_u16(), "admin request");
    reply.into_response()
}

async fn serve<B>(
    gw: &Arc<Gateway>,
    peer: Option<Arc<Vec<u8>>>,
    parts: http::request::Parts,
    body: B,
    route: Option<(&'static Route, Vec<String>)>,
) -> Result<Reply, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // The body is read first (bounded) so that an early refusal does not reset an HTTP/2
    // stream the client is still sending on.
    let body = read_body(body, &gw.config.server).await?;
    // Who asks comes next: without a verified, unrevoked certificate nothing is answered, not
    // even whether a route exists.
    let caller = auth::authenticate(gw, peer.as_deref().map(Vec::as_slice)).await?;
    if console::serves(parts.uri.path()) {
        return console::serve(gw, &caller, &parts, &body).await;
    }
    let Some((route, params)) = route else {
        let allowed = routes::allowed_methods(parts.uri.path());
        if !allowed.is_empty() {
            return Err(ApiError::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} takes {}", parts.uri.path(), allowed.join(", ")),
            ));
        }
        return Err(ApiError::not_found(format!(
            "no admin route {} {}",
            parts.method,
            parts.uri.path()
        )));
    };
    caller.permit(route)?;
    let req = AdminRequest {
        caller,
        params,
        query: parse_query(parts.uri.query()),
        body,
    };
    routes::dispatch(gw, route, &req).await
}

/// Calls the admin API route `method path` as `caller`, in process, and returns its JSON
/// answer. This is how the console reads and acts: through the same table, role check and
/// handlers as a `curl` would, so that it has no path to the data of its own.
pub(crate) async fn call(
    gw: &Arc<Gateway>,
    caller: &Caller,
    method: &str,
    path: &str,
    query: BTreeMap<String, String>,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, ApiError> {
    let (route, params) = routes::find(method, path)
        .ok_or_else(|| ApiError::not_found(format!("no admin route {method} {path}")))?;
    caller.permit(route)?;
    let body = match body {
        Some(value) => serde_json::to_vec(&value)
            .map_err(|e| ApiError::internal(format!("failed to encode a request body: {e}")))?
            .into(),
        None => Bytes::new(),
    };
    let req = AdminRequest {
        caller: caller.clone(),
        params,
        query,
        body,
    };
    let reply = routes::dispatch(gw, route, &req).await?;
    serde_json::from_slice(&reply.body).map_err(|e| {
        ApiError::internal(format!(
            "{method} {path} answered with unreadable JSON: {e}"
        ))
    })
}

async fn read_body<B>(body: B, server: &crate::config::ServerConfig) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    crate::body::read_bounded(body, server.max_body_bytes, server.client_timeout())
        .await
        .map_err(|e| match e {
            crate::body::BodyError::TooLarge { .. } => {
                ApiError::new(e.status(), "too_large", e.to_string())
            }
            crate::body::BodyError::TooSlow { .. } => {
                ApiError::new(e.status(), "too_slow", e.to_string())
            }
            _ => ApiError::bad_request(e.to_string()),
        })
}

/// `a=1&b=x%20y` as a map; a repeated key keeps its last value.
fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
