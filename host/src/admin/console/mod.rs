//! The operator console: HTML pages and SVG charts rendered by the host under `/console/` on
//! the admin listener, so that operators look at the PKI in a browser with the same client
//! certificate they use for the API. No script runs in it and nothing is built outside Cargo;
//! the one stylesheet is compiled into the binary.
//!
//! It lives inside the admin front end because it is one: every page reads, and every form
//! acts, through [`super::call`], the admin API's own route table, role check and handlers.
//! What it adds is presentation ([`html`], [`chart`], [`pages`]) and the defence forms need
//! against cross-site forgery ([`csrf`]), which mTLS alone does not give.

mod chart;
mod csrf;
mod html;
mod pages;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use super::{ApiError, Caller};
use crate::authority::Gateway;
use crate::reply::Reply;

/// Where the console lives on the admin listener.
pub const PREFIX: &str = "/console";

const STYLESHEET: &str = include_str!("console.css");

/// Every console answer's security headers. The policy allows the console's own stylesheet and
/// nothing else: no script at all, images only from itself or inline data, forms only back to
/// itself, and no framing (clickjacking). Referrers stay on the listener: `same-origin`, not
/// `no-referrer`, under which browsers post `Origin: null` and the forgery check could not tell
/// the console's own forms from anyone's.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
];

/// Whether `path` is the console's.
pub fn serves(path: &str) -> bool {
    path == PREFIX || path.starts_with(&format!("{PREFIX}/"))
}

/// A console answer: `body` with `content_type` and the security headers.
fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    SECURITY_HEADERS
        .iter()
        .fold(Reply::bytes(status, content_type, body), |r, &(k, v)| {
            r.header(k, v)
        })
}

fn html_reply(status: StatusCode, page: String) -> Reply {
    respond(status, "text/html; charset=utf-8", page)
}

/// A refusal or failure as a small page (no navigation: the caller may not be known).
pub fn error_page(e: &ApiError) -> Reply {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{status} · acmegate</title>\
         <link rel=\"stylesheet\" href=\"{PREFIX}/static/console.css\"></head>\
         <body><main id=\"main\"><h1>{status}</h1>\
         <p class=\"notice notice-bad\" role=\"alert\"><code>{code}</code> {detail}</p>\
         <p><a href=\"{PREFIX}/\">Back to the overview</a></p></main></body></html>\n",
        status = e.status,
        code = html::esc(&e.error),
        detail = html::esc(&e.detail),
    );
    html_reply(e.status, page)
}

/// What a console handler gets: the gateway, the caller, the rest of the path split into
/// segments, the query and (for a POST) the form fields.
pub struct View<'a> {
    pub gw: &'a Arc<Gateway>,
    pub caller: &'a Caller,
    pub query: BTreeMap<String, String>,
    pub form: BTreeMap<String, String>,
    /// The anti-forgery token this caller's forms carry.
    pub form_token: String,
}

impl View<'_> {
    /// `GET path` of the admin API as this caller.
    pub async fn get(
        &self,
        path: &str,
        query: BTreeMap<String, String>,
    ) -> Result<serde_json::Value, ApiError> {
        super::call(self.gw, self.caller, "GET", path, query, None).await
    }

    /// `POST path` of the admin API as this caller, with a JSON body.
    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        super::call(
            self.gw,
            self.caller,
            "POST",
            path,
            BTreeMap::new(),
            Some(body),
        )
        .await
    }

    /// A whole page of `section`.
    pub fn page(&self, title: &str, section: &str, main: &str) -> Reply {
        html_reply(
            StatusCode::OK,
            html::page(title, section, self.caller, &self.form_token, main),
        )
    }
}

/// Serves a console request from a caller the admin listener has authenticated.
pub async fn serve(
    gw: &Arc<Gateway>,
    caller: &Caller,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Result<Reply, ApiError> {
    let path = parts.uri.path();
    let rest = path.strip_prefix(PREFIX).unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let post = parts.method == http::Method::POST;
    if !post && parts.method != http::Method::GET {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the console answers GET, and POST from its own forms",
        ));
    }
    if rest.is_empty() {
        // `/console` → `/console/`, so that relative links resolve the same way.
        return Ok(respond(StatusCode::SEE_OTHER, "text/plain", "").location(format!("{PREFIX}/")));
    }
    if !post && segments == ["static", "console.css"] {
        return Ok(respond(
            StatusCode::OK,
            "text/css; charset=utf-8",
            STYLESHEET,
        ));
    }
    let form: BTreeMap<String, String> = if post {
        joined_fields(body)
    } else {
        BTreeMap::new()
    };
    if post {
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            });
        csrf::check(
            &gw.form_key,
            caller,
            form.get(csrf::FIELD).map(String::as_str),
            &parts.headers,
            authority.as_deref(),
        )?;
    }
    let view = View {
        gw,
        caller,
        query: super::parse_query(parts.uri.query()),
        form,
        form_token: csrf::token(&gw.form_key, caller),
    };
    match (post, segments.as_slice()) {
        (false, []) => pages::overview::show(&view).await,
        (false, ["certificates"]) => pages::certificates::list(&view).await,
        (false, ["certificates", serial]) => pages::certificates::show(&view, serial).await,
        (true, ["certificates", serial, "revoke"]) => {
            pages::certificates::revoke(&view, serial).await
        }
        (true, ["certificates", serial, "renew-now"]) => {
            pages::certificates::renew_now(&view, serial).await
        }
        (true, ["certificates", serial, "deploy"]) => {
            pages::certificates::deploy(&view, serial).await
        }
        (false, ["managed"]) => pages::managed::list(&view).await,
        (true, ["managed", name, verb]) if pages::managed::is_action(verb) => {
            pages::managed::act(&view, name, verb).await
        }
        (false, ["accounts"]) => pages::accounts::list(&view).await,
        (false, ["accounts", id]) => pages::accounts::show(&view, id).await,
        (true, ["accounts", id, "deactivate"]) => pages::accounts::deactivate(&view, id).await,
        (false, ["orders"]) => pages::orders::list(&view).await,
        (false, ["orders", id]) => pages::orders::show(&view, id).await,
        (false, ["eab-keys"]) => pages::eab::list(&view).await,
        (true, ["eab-keys"]) => pages::eab::create(&view).await,
        (true, ["eab-keys", kid, "revoke"]) => pages::eab::revoke(&view, kid).await,
        (false, ["audit"]) => pages::audit::show(&view).await,
        (false, ["plugins"]) => pages::plugins::show(&view).await,
        (true, ["plugins", "reload"]) => pages::plugins::act(&view, None, "reload").await,
        (true, ["plugins", name, verb]) if pages::plugins::is_action(verb) => {
            pages::plugins::act(&view, Some(name), verb).await
        }
        _ => Err(ApiError::not_found(format!(
            "no console page {} {path}",
            parts.method
        ))),
    }
}

/// After a successful action, back to `location` (POST/redirect/GET, so that reloading the
/// page does not repeat the action).
fn see_other(location: String) -> Reply {
    respond(StatusCode::SEE_OTHER, "text/plain", "").location(location)
}
/// A posted form's fields; a field sent more than once (the deploy form's target
/// checkboxes) is one comma-separated value, in the order sent.
fn joined_fields(body: &[u8]) -> BTreeMap<String, String> {
    let mut form: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(body).into_owned() {
        match form.get_mut(&k) {
            Some(all) => {
                all.push(',');
                all.push_str(&v);
            }
            None => {
                form.insert(k, v);
            }
        }
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_sent_twice_is_one_comma_separated_value() {
        let form = joined_fields(b"targets=edge&form_token=t&targets=all+in&targets=");
        assert_eq!(form["targets"], "edge,all in,");
        assert_eq!(form["form_token"], "t");
    }
}
