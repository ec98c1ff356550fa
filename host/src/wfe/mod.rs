//! The web front end: routes ACME requests (RFC 8555 §7), checks them (§6: JWS, nonce, URL),
//! hands them to the authority (`crate::authority`), and encodes its answers as ACME objects
//! and problem documents. Handlers live in one file per resource family.

mod account;
mod auth;
mod authz;
pub(crate) mod cert;
pub mod crl;
pub mod directory;
mod order;
mod renewal;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use crate::acme::Problem;
use crate::authority::Gateway;

pub use crate::authority::ACME_PREFIX;
pub use crate::reply::{rfc3339, Body, Reply};

/// The request as handlers see it: method, path (without the `/acme` prefix), query, headers
/// and the whole body (already size-limited).
#[derive(Debug)]
pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Incoming {
    /// The URL a JWS must name in its `url` header (RFC 8555 §6.4).
    pub fn url(&self, gw: &Gateway) -> String {
        match &self.query {
            Some(q) => format!("{}{ACME_PREFIX}{}?{q}", gw.base_url, self.path),
            None => format!("{}{ACME_PREFIX}{}", gw.base_url, self.path),
        }
    }
}

/// Entry point for every HTTP request on the ACME listener.
pub async fn handle<B>(gw: Arc<Gateway>, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let reply = match read_body(body, &gw.config.server).await {
        Ok(body) => route(&gw, parts, body).await,
        Err(p) => Reply::problem(&p),
    };
    let is_acme = path.starts_with(ACME_PREFIX);
    let mut reply = reply;
    if is_acme {
        // RFC 8555 §6.5: a fresh nonce on every response, errors included; §7.1: index link.
        reply = reply
            .header("replay-nonce", gw.nonces.issue(gw.now()))
            .link(&gw.directory_url(), "index");
    }
    gw.metrics
        .request(&route_label(&path), reply.status.as_u16());
    tracing::debug!(%method, %path, status = reply.status.as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    reply.into_response()
}

/// Entry point for every request on the plain-HTTP listener (`server.http_listen`): the CA
/// certificates and CRLs, which RFC 5280 relying parties fetch without TLS (checking a CRL
/// fetched over TLS could need that very CRL), and nothing else.
pub async fn handle_pki<B>(gw: Arc<Gateway>, req: Request<B>) -> Response<Body> {
    let (parts, _) = req.into_parts();
    let path = parts.uri.path();
    let reply = match pki(&gw, &parts.method, path).await {
        Some(reply) => reply,
        None => Reply::bytes(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!(
                "no resource at {path}: this listener serves only the CA certificates and CRLs \
                 (GET {} and {})\n",
                directory::ROOT_PEM_PATH,
                directory::CRL_PATH
            ),
        ),
    };
    gw.metrics
        .request(&route_label(path), reply.status.as_u16());
    reply.into_response()
}

/// The CA certificates and CRLs, on both listeners.
async fn pki(gw: &Gateway, method: &Method, path: &str) -> Option<Reply> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match path {
        directory::ROOT_PEM_PATH
        | directory::INTERMEDIATE_PEM_PATH
        | directory::INTERMEDIATE_DER_PATH => directory::public(gw, method, path),
        directory::CRL_PATH => Some(crl::serve(gw, false).await),
        directory::CRL_PEM_PATH => Some(crl::serve(gw, true).await),
        p if p.starts_with(crl::ISSUERS_PREFIX) => crl::serve_issuer(gw, p).await,
        _ => None,
    }
}

async fn read_body<B>(body: B, server: &crate::config::ServerConfig) -> Result<Bytes, Problem>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    crate::body::read_bounded(body, server.max_body_bytes, server.client_timeout())
        .await
        .map_err(|e| {
            let status = e.status();
            Problem::malformed(e.to_string()).with_status(status.as_u16())
        })
}

async fn route(gw: &Arc<Gateway>, parts: http::request::Parts, body: Bytes) -> Reply {
    let path = parts.uri.path();
    if let Some(reply) = directory::public(gw, &parts.method, path) {
        return reply;
    }
    if let Some(reply) = pki(gw, &parts.method, path).await {
        return reply;
    }
    if parts.method == Method::GET {
        if let Some(reply) = renewal::explanation(path) {
            return reply;
        }
    }
    if parts.method == Method::GET {
        match path {
            directory::READY_PATH => return directory::ready(gw).await,
            directory::METRICS_PATH => return metrics(gw).await,
            _ => {}
        }
    }
    let Some(acme_path) = path.strip_prefix(ACME_PREFIX) else {
        return Problem::malformed(format!("no resource at {path}"))
            .with_status(404)
            .into();
    };
    let req = Incoming {
        method: parts.method,
        path: acme_path.to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    let segments: Vec<&str> = acme_path.trim_start_matches('/').split('/').collect();
    let result = match (req.method.clone(), segments.as_slice()) {
        (Method::GET, ["directory"]) => Ok(directory::directory(gw)),
        (Method::HEAD, ["new-nonce"]) => {
            Ok(Reply::empty(StatusCode::OK).header("cache-control", "no-store"))
        }
        (Method::GET, ["new-nonce"]) => {
            Ok(Reply::empty(StatusCode::NO_CONTENT).header("cache-control", "no-store"))
        }
        (Method::POST, ["new-account"]) => account::new_account(gw, &req).await,
        (Method::POST, ["acct", id]) => account::account(gw, &req, id).await,
        (Method::POST, ["acct", id, "orders"]) => account::orders(gw, &req, id).await,
        (Method::POST, ["key-change"]) => account::key_change(gw, &req).await,
        (Method::POST, ["new-order"]) => order::new_order(gw, &req).await,
        (Method::POST, ["order", id]) => order::get_order(gw, &req, id).await,
        (Method::POST, ["order", id, "finalize"]) => order::finalize(gw, &req, id).await,
        (Method::POST, ["authz", id]) => authz::authorization(gw, &req, id).await,
        (Method::POST, ["chall", id]) => authz::challenge(gw, &req, id).await,
        (Method::POST, ["cert", id]) => cert::download(gw, &req, id).await,
        (Method::POST, ["revoke-cert"]) => cert::revoke(gw, &req).await,
        (Method::GET, ["renewal-info", cert_id]) => renewal::renewal_info(gw, cert_id).await,
        (_, ["directory"]) | (_, ["new-nonce"]) => Err(not_allowed("GET, HEAD")),
        // RFC 9773 §4.1: renewalInfo is a plain GET; there is no POST-as-GET form.
        (_, ["renewal-info", _]) => Err(not_allowed("GET")),
        (_, ["new-account" | "key-change" | "new-order" | "revoke-cert"])
        | (_, ["acct" | "order" | "authz" | "chall" | "cert", _])
        | (_, ["acct", _, "orders"])
        | (_, ["order", _, "finalize"]) => Err(not_allowed("POST")),
        _ => Err(Problem::malformed(format!("no ACME resource at {path}")).with_status(404)),
    };
    result.unwrap_or_else(Reply::from)
}

/// `/metrics`: the counters, plus what is read from the gateway's state at scrape time.
async fn metrics(gw: &Gateway) -> Reply {
    use std::sync::atomic::Ordering;
    let t = gw.now();
    let expiring = gw
        .db(move |s| {
            crate::metrics::EXPIRY_WINDOWS
                .iter()
                .map(|(window, secs)| {
                    let filter = crate::store::CertificateFilter {
                        status: Some(crate::acme::CertificateStatus::Valid),
                        valid_at: Some(t),
                        expiring_before: Some(t + secs),
                        ..Default::default()
                    };
                    let none = crate::store::PageRequest {
                        offset: 0,
                        limit: 0,
                    };
                    s.list_certificates(&filter, none)
                        .map(|page| (*window, page.total))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap_or_default();
    let scraped = crate::metrics::Scraped {
        plugins: gw
            .loaded_plugins
            .iter()
            .map(|w| {
                let stats = w.plugin.stats();
                (w.spec.name.clone(), stats.calls, stats.faults)
            })
            .collect(),
        plugin_reloads: gw.plugin_reloads.reloads.load(Ordering::Relaxed),
        plugin_reload_failures: gw.plugin_reloads.failures.load(Ordering::Relaxed),
        expiring,
        plugins_enabled: gw
            .loaded_plugins
            .iter()
            .map(|w| {
                let on = gw
                    .plugins
                    .as_ref()
                    .is_none_or(|runtime| runtime.is_enabled(&w.spec.name));
                (w.spec.name.clone(), on)
            })
            .collect(),
        ca_root_sha256: gw.ca.fingerprints().0,
        revocations: gw.db(|s| s.revocation_generation()).await.ok(),
    };
    let mut text = gw.metrics.render();
    text.push_str(&crate::metrics::render_scraped(&scraped));
    Reply::bytes(StatusCode::OK, "text/plain; version=0.0.4", text)
}

/// The route a path matched, with resource ids replaced by `{id}`, for metrics labels.
fn route_label(path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["acme", kind @ ("acct" | "order" | "authz" | "chall" | "cert" | "renewal-info"), _] => {
            format!("/acme/{kind}/{{id}}")
        }
        ["acme", kind @ ("acct" | "order"), _, sub @ ("orders" | "finalize")] => {
            format!("/acme/{kind}/{{id}}/{sub}")
        }
        ["acme", "directory" | "new-nonce" | "new-account" | "new-order" | "revoke-cert" | "key-change"]
        | ["ca", "root.pem" | "intermediate.pem" | "intermediate.der" | "crl.der" | "crl.pem"]
        | ["health" | "ready" | "metrics" | "openapi.json"] => path.to_string(),
        ["renewal-explanations", _] => "/renewal-explanations/{reason}".to_string(),
        _ => "other".to_string(),
    }
}

/// RFC 8555 §6.3: resources are fetched with POST-as-GET; a GET gets 405.
fn not_allowed(allow: &'static str) -> Problem {
    Problem::malformed(format!(
        "method not allowed here; use {allow} (RFC 8555 §6.3)"
    ))
    .with_status(405)
}

#[cfg(test)]
mod tests {
    #[test]
    fn route_labels_hide_ids() {
        for (path, label) in [
            ("/acme/order/0123abc", "/acme/order/{id}"),
            ("/acme/order/0123abc/finalize", "/acme/order/{id}/finalize"),
            ("/acme/new-order", "/acme/new-order"),
            ("/acme/renewal-info/aYhb.AIdl", "/acme/renewal-info/{id}"),
            (
                "/renewal-explanations/anything",
                "/renewal-explanations/{reason}",
            ),
            ("/ca/crl.der", "/ca/crl.der"),
            ("/acme/../../etc", "other"),
            ("/random/path", "other"),
        ] {
            assert_eq!(super::route_label(path), label, "{path}");
        }
    }
}
