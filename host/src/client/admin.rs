//! A client of the mTLS admin API, for the commands that act on a running gateway
//! (`acmegate certs`): it presents an admin identity, the directory `acmegate admin-cert issue
//! --out DIR` writes (`cert.pem` with its chain, `key.pem`, and `ca.pem` to trust).

use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use super::{ClientError, Transport};

/// A connection to one gateway's admin API.
#[derive(Debug)]
pub struct AdminClient {
    transport: Transport,
    /// `https://host:port`, without a trailing slash.
    base: String,
}

impl AdminClient {
    /// A client for the admin API at `url` (`https://host:port`) with the identity in `dir`.
    /// The error names the file that could not be read.
    pub fn new(url: &str, dir: &Path) -> Result<AdminClient, ClientError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                ClientError::Http(format!(
                    "cannot read {} (an admin identity directory holds cert.pem, key.pem and \
                     ca.pem: acmegate admin-cert issue --out DIR): {e}",
                    path.display()
                ))
            })
        };
        let (chain, key, ca) = (read("cert.pem")?, read("key.pem")?, read("ca.pem")?);
        let base = url.trim_end_matches('/').to_owned();
        let uri: http::Uri = base
            .parse()
            .map_err(|e| ClientError::Http(format!("admin API URL {base:?}: {e}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(ClientError::Http(format!(
                "admin API URL {base:?}: expected https://HOST:PORT"
            )));
        }
        let transport = Transport::with_identity(&uri, &ca, Some((&chain, &key)))?;
        Ok(AdminClient { transport, base })
    }

    /// Sends `method path` with `body` as JSON and returns the JSON answer; any status other
    /// than 2xx is an [`ClientError::Admin`] carrying the API's reason.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let failed = |e: String| ClientError::Http(format!("{method} {url}: {e}"));
        let bytes = match body {
            Some(body) => Bytes::from(body.to_string()),
            None => Bytes::new(),
        };
        let request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("user-agent", "acmegate-cli")
            .header("content-type", "application/json")
            .body(Full::new(bytes))
            .map_err(|e| failed(e.to_string()))?;
        let response = self
            .transport
            .send(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body = response.into_body();
        let json: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                failed(format!(
                    "answered {status} with a body that is not JSON ({e}): {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            })?
        };
        if status.is_success() {
            return Ok(json);
        }
        let text = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
        Err(ClientError::Admin {
            status: status.as_u16(),
            error: text("error"),
            detail: format!("{method} {path}: {}", text("detail")),
        })
    }
}
