//! The host side of the `http` capability: one HTTP/1.1 exchange per call, bounded in time and
//! size, to a host the plugin was granted.
//!
//! The address check happens on the address actually dialled: the name is resolved once, the
//! non-public addresses are dropped (unless `http_private` is granted) and the connection goes
//! to one of the remaining ones, so a name that resolves to a public address at check time and
//! a private one at connect time (DNS rebinding) cannot reach inside. Redirects are not
//! followed: a plugin that wants one reads `location` and asks again, through the same checks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;

use super::bindings::wit::http::{Request, Response};
use super::bindings::wit::types::CapabilityError;
use super::Grants;

/// Longest wait a plugin may ask for; its own wall-clock limit usually ends the call sooner.
pub const HTTP_MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read: API answers, certificate chains and CRLs of a private CA fit;
/// more is refused rather than buffered.
pub const HTTP_MAX_RESPONSE_BYTES: usize = 4 << 20;
/// Largest request body a plugin may send.
pub const HTTP_MAX_REQUEST_BYTES: usize = 1 << 20;
/// Where Debian keeps the system's trusted CAs (package ca-certificates).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a request was not sent or not answered.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// Every address of the host is non-public and `http_private` is not granted.
    Private(IpAddr),
    Capability(CapabilityError),
}

impl From<CapabilityError> for HttpError {
    fn from(e: CapabilityError) -> Self {
        HttpError::Capability(e)
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> HttpError {
    HttpError::Capability(CapabilityError::Failed(format!("{what}: {e}")))
}

fn invalid(what: impl Into<String>) -> HttpError {
    HttpError::Capability(CapabilityError::Invalid(what.into()))
}

/// Whether `ip` is on the public internet (not loopback, private, link-local, CGNAT,
/// unique-local, documentation, multicast or unspecified).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, CGNAT
                || o[0] == 0)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (s[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
                    || (s[0] & 0xffc0) == 0xfe80 // fe80::/10, link local
                    || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
            }
        },
    }
}

/// Sends `request` to `url` (host and scheme already checked against the grants).
pub(crate) async fn send(
    grants: &Grants,
    url: url::Url,
    request: Request,
) -> Result<Response, HttpError> {
    if request.body.len() > HTTP_MAX_REQUEST_BYTES {
        return Err(invalid(format!(
            "request body over {HTTP_MAX_REQUEST_BYTES} bytes"
        )));
    }
    let timeout = Duration::from_millis(request.timeout_ms.into()).min(HTTP_MAX_TIMEOUT);
    match tokio::time::timeout(timeout, exchange(grants, &url, request)).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Capability(CapabilityError::Timeout)),
    }
}

async fn exchange(
    grants: &Grants,
    url: &url::Url,
    request: Request,
) -> Result<Response, HttpError> {
    let host = url
        .host_str()
        .ok_or_else(|| invalid("URL without a host"))?;
    let bare = host.trim_matches(['[', ']']);
    let https = url.scheme() == "https";
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let addr = resolve(bare, port, grants.http_private).await?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| failed(&format!("connect to {addr}"), e))?;
    tcp.set_nodelay(true).map_err(|e| failed("socket", e))?;
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    if https {
        let connector = tls_connector(grants)?;
        let name = rustls_pki_types::ServerName::try_from(bare.to_string())
            .map_err(|e| invalid(format!("bad server name: {e}")))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| failed("TLS handshake", e))?;
        round_trip(TokioIo::new(tls), url, &host_header, request).await
    } else {
        round_trip(TokioIo::new(tcp), url, &host_header, request).await
    }
}

/// The first address of `host` the grants allow.
async fn resolve(host: &str, port: u16, private_ok: bool) -> Result<SocketAddr, HttpError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| failed(&format!("resolve {host}"), e))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| failed(&format!("resolve {host}"), "no address"))?;
    addrs
        .into_iter()
        .find(|a| private_ok || is_public(a.ip()))
        .ok_or(HttpError::Private(first.ip()))
}

fn tls_connector(grants: &Grants) -> Result<tokio_rustls::TlsConnector, HttpError> {
    let mut roots = rustls::RootCertStore::empty();
    let files: Vec<std::path::PathBuf> = if grants.http_ca_files.is_empty() {
        vec![SYSTEM_BUNDLE.into()]
    } else {
        grants.http_ca_files.clone()
    };
    for file in &files {
        let pem = std::fs::read(file)
            .map_err(|e| failed(&format!("read CA file {}", file.display()), e))?;
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            // A bundle may hold certificates webpki cannot use; the others still count.
            let _ = roots.add(cert);
        }
    }
    if roots.is_empty() {
        return Err(failed("TLS", "no CA certificate to trust"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed("TLS", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn round_trip<T>(
    io: TokioIo<T>,
    url: &url::Url,
    host_header: &str,
    request: Request,
) -> Result<Response, HttpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| failed("HTTP handshake", e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| invalid(format!("bad method {:?}", request.method)))?;
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host_header);
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("host") {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    let outgoing = builder
        .body(Full::new(Bytes::from(request.body)))
        .map_err(|e| invalid(format!("bad request: {e}")))?;
    let reply = sender
        .send_request(outgoing)
        .await
        .map_err(|e| failed("HTTP", e))?;
    let status = reply.status().as_u16();
    let headers = reply
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = Limited::new(reply.into_body(), HTTP_MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| failed("response body (at most 4 MiB)", e))?
        .to_bytes()
        .to_vec();
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot-per-connection HTTP/1.1 server on 127.0.0.1 answering `reply` after
    /// `delay`; returns its port.
    async fn server(reply: Vec<u8>, delay: Duration) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = sock.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let _ = sock.write_all(&reply).await;
                });
            }
        });
        port
    }

    fn get(url: &str, timeout_ms: u32) -> Request {
        Request {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            timeout_ms,
        }
    }

    async fn call(grants: &Grants, url: &str, timeout_ms: u32) -> Result<Response, HttpError> {
        send(grants, url::Url::parse(url).unwrap(), get(url, timeout_ms)).await
    }

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn loopback_needs_the_private_grant() {
        let port = server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            Duration::ZERO,
        )
        .await;
        let url = format!("http://127.0.0.1:{port}/x");
        let denied = call(&Grants::default(), &url, 2000).await;
        assert!(matches!(denied, Err(HttpError::Private(ip)) if ip.is_loopback()));
        let grants = Grants {
            http_private: true,
            ..Grants::default()
        };
        let ok = call(&grants, &url, 2000).await.unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"ok"[..]));
        assert!(ok
            .headers
            .iter()
            .any(|(k, v)| k == "content-length" && v == "2"));
    }

    #[tokio::test]
    async fn slow_and_oversized_answers_fail() {
        let grants = Grants {
            http_private: true,
            ..Grants::default()
        };
        let slow = server(
            b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            Duration::from_secs(2),
        )
        .await;
        let timed_out = call(&grants, &format!("http://127.0.0.1:{slow}/"), 200).await;
        assert!(matches!(
            timed_out,
            Err(HttpError::Capability(CapabilityError::Timeout))
        ));
        let huge_len = HTTP_MAX_RESPONSE_BYTES + 1;
        let mut reply =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {huge_len}\r\n\r\n").into_bytes();
        reply.extend(std::iter::repeat_n(b'a', huge_len));
        let big = server(reply, Duration::ZERO).await;
        let too_big = call(&grants, &format!("http://127.0.0.1:{big}/"), 5000).await;
        assert!(
            matches!(&too_big, Err(HttpError::Capability(CapabilityError::Failed(m))) if m.contains("4 MiB")),
            "{too_big:?}"
        );
    }

    /// HTTPS against a server whose certificate comes from a CA listed in `http_ca_files`;
    /// the system bundle does not trust it.
    #[tokio::test]
    async fn https_with_granted_ca_file() {
        let ca = crate::ca::testutil::shared_ca();
        let (chain, key) = ca.issue_tls_server(&["127.0.0.1".into()]).unwrap();
        let chain: Vec<rustls_pki_types::CertificateDer<'static>> =
            chain.into_iter().map(Into::into).collect();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(sock).await {
                        let mut buf = vec![0u8; 4096];
                        let _ = tls.read(&mut buf).await;
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nyes")
                            .await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let roots = dir.path().join("root.pem");
        std::fs::write(&roots, ca.root_pem()).unwrap();
        let url = format!("https://127.0.0.1:{port}/");
        let system = Grants {
            http_private: true,
            ..Grants::default()
        };
        assert!(matches!(
            call(&system, &url, 3000).await,
            Err(HttpError::Capability(_))
        ));
        let granted = Grants {
            http_private: true,
            http_ca_files: vec![roots],
            ..Grants::default()
        };
        let ok = call(&granted, &url, 3000).await.unwrap();
        assert_eq!(ok.body, b"yes");
    }
}
