//! HTTP answers of both front ends (the ACME server and the admin API): JSON resources,
//! problem documents, and headers such as those every ACME response carries (Replay-Nonce,
//! Link rel="index", RFC 8555 §6.5 and §7.1), which the ACME front end adds.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::acme::Problem;

pub type Body = Full<Bytes>;

/// A response under construction; the front end adds the common headers when it sends it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status,
                content_type: Some("application/json"),
                headers: Vec::new(),
                body: body.into(),
            },
            Err(e) => Self::problem(&Problem::server_internal(format!(
                "failed to encode response: {e}"
            ))),
        }
    }

    /// An `application/problem+json` reply (RFC 8555 §6.7), with Retry-After when the problem
    /// asks for one.
    pub fn problem(p: &Problem) -> Self {
        let mut reply = Self {
            status: StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST),
            content_type: Some("application/problem+json"),
            headers: Vec::new(),
            body: p.to_json().into(),
        };
        if let Some(secs) = p.retry_after {
            reply.headers.push(("retry-after", secs.to_string()));
        }
        reply
    }

    pub fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            content_type: Some(content_type),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn location(mut self, url: impl Into<String>) -> Self {
        self.headers.push(("location", url.into()));
        self
    }

    pub fn link(mut self, url: &str, rel: &str) -> Self {
        self.headers
            .push(("link", format!("<{url}>;rel=\"{rel}\"")));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut resp = Response::new(Full::new(self.body));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        if let Some(ct) = self.content_type {
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        for (name, value) in self.headers {
            // Values are built from our own URLs and numbers; one that is not a valid header
            // value is dropped rather than failing the response.
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.append(name, v);
            }
        }
        resp
    }
}

impl From<Problem> for Reply {
    fn from(p: Problem) -> Self {
        Reply::problem(&p)
    }
}

/// A Unix time as RFC 3339 in UTC with seconds, as ACME objects (RFC 8555 §7.1) and the admin
/// API write times.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
