//! http-01 (RFC 8555 §8.3): fetch `http://<identifier>/.well-known/acme-challenge/<token>`
//! and compare the body with the key authorization, following a bounded number of redirects.
//!
//! Redirects may go to http or https URLs on any host name (resolved like the identifier), but
//! only to the validation ports: http on `http01_port`, https on `tlsalpn01_port` (80 and 443
//! in production, as Let's Encrypt allows), so a client cannot aim the VA at other services.

use bytes::Bytes;
use http::header::{HeaderValue, HOST, LOCATION, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::acme::Problem;

use super::{excerpt, Target, Va, ValidationRequest};

/// The most redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;
/// The most body bytes read; a key authorization is under 100.
const MAX_BODY: usize = 8 * 1024;

pub(super) async fn validate(
    va: &Va,
    req: &ValidationRequest,
    target: &Target,
) -> Result<(), Problem> {
    let host = match target {
        Target::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        other => other.to_string(),
    };
    let first = Url::parse(&format!(
        "http://{host}/.well-known/acme-challenge/{}",
        req.token
    ))
    .map_err(|e| Problem::malformed(format!("{target} cannot form an http-01 URL: {e}")))?;

    let mut url = first.clone();
    for _ in 0..=MAX_REDIRECTS {
        let response = fetch(va, &url).await?;
        if is_redirect(response.status) {
            let location = response.location.ok_or_else(|| {
                Problem::incorrect_response(format!(
                    "fetching {url}: HTTP {} redirect without a Location header",
                    response.status
                ))
            })?;
            url = redirect_target(va, target, &url, &location)?;
            continue;
        }
        if response.status != StatusCode::OK {
            return Err(Problem::incorrect_response(format!(
                "fetching {url}: received HTTP {}{}",
                response.status,
                response
                    .body
                    .ok()
                    .map(|b| format!(", body {}", excerpt(&String::from_utf8_lossy(&b))))
                    .unwrap_or_default()
            )));
        }
        let body = response.body.map_err(|e| e.into_problem(&url))?;
        return check_body(&url, &body, &req.key_authorization);
    }
    Err(Problem::connection(format!(
        "fetching {first}: too many redirects (more than {MAX_REDIRECTS}), last to {url}"
    )))
}

/// RFC 8555 §8.3: the body is the key authorization; whitespace around it is tolerated.
fn check_body(url: &Url, body: &[u8], key_authorization: &str) -> Result<(), Problem> {
    let text = String::from_utf8_lossy(body);
    let received = text.trim();
    if received == key_authorization {
        return Ok(());
    }
    Err(Problem::incorrect_response(format!(
        "the key authorization fetched from {url} is wrong: expected {key_authorization:?}, \
         received {}",
        excerpt(received)
    )))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Checks where a redirect leads before following it: http or https only, only to the
/// validation ports, and no IP addresses other than the identifier itself.
fn redirect_target(va: &Va, target: &Target, from: &Url, location: &str) -> Result<Url, Problem> {
    let refuse = |why: &str| {
        Problem::connection(format!(
            "redirect from {from} to {} refused: {why}",
            excerpt(location)
        ))
    };
    let mut next = from
        .join(location)
        .map_err(|e| refuse(&format!("not a valid URL ({e})")))?;
    next.set_fragment(None);
    let allowed_port = match next.scheme() {
        "http" => va.settings.http01_port,
        "https" => va.settings.tlsalpn01_port,
        _ => return Err(refuse("only http and https URLs may be followed")),
    };
    // `port()` is None for the scheme's default port, which maps to the configured one.
    if next.port().is_some_and(|p| p != allowed_port) {
        return Err(refuse(&format!(
            "only port {allowed_port} may be used for {}",
            next.scheme()
        )));
    }
    match next.host() {
        Some(Host::Domain(_)) => Ok(next),
        Some(Host::Ipv4(ip)) if *target == Target::Ip(ip.into()) => Ok(next),
        Some(Host::Ipv6(ip)) if *target == Target::Ip(ip.into()) => Ok(next),
        Some(_) => Err(refuse("redirects to other IP addresses are not followed")),
        None => Err(refuse("the URL has no host")),
    }
}

/// One fetched response: status, redirect location, and the body read so far.
struct Fetched {
    status: StatusCode,
    location: Option<String>,
    body: Result<Bytes, BodyError>,
}

enum BodyError {
    TooLarge,
    Read(String),
}

impl BodyError {
    fn into_problem(self, url: &Url) -> Problem {
        match self {
            BodyError::TooLarge => Problem::incorrect_response(format!(
                "the response from {url} is larger than {MAX_BODY} bytes"
            )),
            BodyError::Read(why) => {
                Problem::connection(format!("reading the response from {url} failed: {why}"))
            }
        }
    }
}

/// GETs `url` (already checked by [`redirect_target`] or built from the identifier).
async fn fetch(va: &Va, url: &Url) -> Result<Fetched, Problem> {
    let (host, target) = match url.host() {
        Some(Host::Domain(name)) => (name.to_owned(), Target::Dns(name.to_ascii_lowercase())),
        Some(Host::Ipv4(ip)) => (ip.to_string(), Target::Ip(ip.into())),
        Some(Host::Ipv6(ip)) => (format!("[{ip}]"), Target::Ip(ip.into())),
        None => return Err(Problem::connection(format!("{url} has no host"))),
    };
    let https = url.scheme() == "https";
    let port = if https {
        va.settings.tlsalpn01_port
    } else {
        va.settings.http01_port
    };
    let (tcp, peer) = va.connect(&target, port).await?;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    // RFC 8555 §8.3: the Host header carries the name being validated, without a port.
    let request = Request::get(path)
        .header(
            HOST,
            HeaderValue::from_str(&host).map_err(|e| {
                Problem::malformed(format!("{host} cannot be sent as a Host header: {e}"))
            })?,
        )
        .header(USER_AGENT, "acmegate-va")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Problem::server_internal(format!("building the request for {url}: {e}")))?;
    let exchanged = if https {
        let name = match &target {
            Target::Dns(name) => ServerName::try_from(name.clone())
                .map_err(|e| Problem::tls(format!("{name} is not a valid TLS server name: {e}")))?,
            Target::Ip(ip) => ServerName::IpAddress((*ip).into()),
        };
        let tls = TlsConnector::from(va.https.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                Problem::tls(format!("TLS handshake with {peer} for {url} failed: {e}"))
            })?;
        exchange(tls, request).await
    } else {
        exchange(tcp, request).await
    };
    exchanged.map_err(|e| Problem::connection(format!("fetching {url} from {peer}: {e}")))
}

/// Aborts the connection task when the exchange is over or abandoned (e.g. by the timeout).
struct ConnectionTask(JoinHandle<()>);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends one HTTP/1.1 request over `io` and reads the response with a bounded body.
async fn exchange<I>(io: I, request: Request<Empty<Bytes>>) -> Result<Fetched, hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let _task = ConnectionTask(tokio::spawn(async move {
        // Its errors surface through `send_request` or the body.
        let _ = connection.await;
    }));
    let response = sender.send_request(request).await?;
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_body(response.into_body()).await;
    Ok(Fetched {
        status,
        location,
        body,
    })
}

async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::{ChallengeType, Identifier, ProblemType};
    use crate::va::test_support::{http_server, https_server, refused_port, request, settings};
    use acmegate_testkit::dns::TestDnsServer;
    use http::Response;
    use http_body_util::Full;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    const TOKEN: &str = "tok_123";
    const KEY_AUTHZ: &str = "tok_123.thumbprint";

    fn reply(status: u16, body: &str) -> Response<Full<Bytes>> {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    }

    fn redirect(to: &str) -> Response<Full<Bytes>> {
        Response::builder()
            .status(302)
            .header(LOCATION, to)
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    /// Serves the key authorization (plus `extra`) at the challenge path, 404 elsewhere, and
    /// records the Host headers seen.
    async fn challenge_server(body: &'static str) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        let hosts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = hosts.clone();
        let port = http_server(move |req| {
            let seen = seen.clone();
            async move {
                let host = req.headers()[HOST].to_str().unwrap().to_owned();
                seen.lock().unwrap().push(host);
                if req.uri().path() == format!("/.well-known/acme-challenge/{TOKEN}") {
                    reply(200, body)
                } else {
                    reply(404, "no such file")
                }
            }
        })
        .await;
        (port, hosts)
    }

    async fn va_for(http_port: u16) -> (TestDnsServer, Va) {
        let dns = TestDnsServer::start().await.unwrap();
        let va = Va::new(settings(&dns, http_port, 0)).unwrap();
        (dns, va)
    }

    fn http01(identifier: Identifier) -> ValidationRequest {
        request(identifier, ChallengeType::Http01, KEY_AUTHZ)
    }

    /// Validates `name` against a responder on `http_port` and returns the failure.
    async fn failure(http_port: u16, name: &str) -> crate::acme::Problem {
        let (_dns, va) = va_for(http_port).await;
        va.validate(&http01(Identifier::dns(name)))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn valid_body_with_trailing_whitespace_passes() {
        let (port, hosts) = challenge_server("tok_123.thumbprint\r\n").await;
        let (_dns, va) = va_for(port).await;
        va.validate(&http01(Identifier::dns("www.example.test")))
            .await
            .unwrap();
        assert_eq!(hosts.lock().unwrap().as_slice(), ["www.example.test"]);

        // IP identifiers are used as they are, with the address as Host.
        va.validate(&http01(Identifier::ip(IpAddr::V4(Ipv4Addr::LOCALHOST))))
            .await
            .unwrap();
        assert_eq!(hosts.lock().unwrap()[1], "127.0.0.1");
    }

    #[tokio::test]
    async fn wrong_body_is_incorrect_response_naming_url_and_body() {
        let (port, _) = challenge_server("something else entirely").await;
        let p = failure(port, "a.test").await;
        assert_eq!(p.kind, ProblemType::IncorrectResponse);
        assert!(
            p.detail
                .contains("http://a.test/.well-known/acme-challenge/tok_123"),
            "{}",
            p.detail
        );
        assert!(
            p.detail.contains("\"something else entirely\""),
            "{}",
            p.detail
        );
    }

    #[tokio::test]
    async fn oversized_bodies_are_not_read_to_the_end() {
        let port = http_server(|_| async { reply(200, &"x".repeat(MAX_BODY + 1)) }).await;
        let p = failure(port, "a.test").await;
        assert_eq!(p.kind, ProblemType::IncorrectResponse);
        assert!(p.detail.contains("larger than 8192 bytes"), "{}", p.detail);
    }

    #[tokio::test]
    async fn not_found_is_incorrect_response_with_status() {
        let port = http_server(|_| async { reply(404, "nope") }).await;
        let p = failure(port, "a.test").await;
        assert_eq!(p.kind, ProblemType::IncorrectResponse);
        assert!(p.detail.contains("404"), "{}", p.detail);
        assert!(p.detail.contains("\"nope\""), "{}", p.detail);
    }

    #[tokio::test]
    async fn connection_refused_is_connection() {
        let p = failure(refused_port().await, "a.test").await;
        assert_eq!(p.kind, ProblemType::Connection);
        assert!(p.detail.contains("127.0.0.1"), "{}", p.detail);
    }

    #[tokio::test]
    async fn dns_failures_are_dns_problems() {
        let port = http_server(|_| async { reply(200, KEY_AUTHZ) }).await;
        let (dns, va) = va_for(port).await;
        dns.set_servfail("broken.test");
        let p = va
            .validate(&http01(Identifier::dns("broken.test")))
            .await
            .unwrap_err();
        assert_eq!(p.kind, ProblemType::Dns);
        let dns = dns.with_default_a(None);
        let p = va
            .validate(&http01(Identifier::dns("nowhere.test")))
            .await
            .unwrap_err();
        assert_eq!(p.kind, ProblemType::Dns);
        assert!(p.detail.contains("no A or AAAA"), "{}", p.detail);
        drop(dns);
    }

    #[tokio::test]
    async fn redirects_are_followed_to_other_names_on_the_same_port() {
        let port = http_server(|req| async move {
            let host = req.headers()[HOST].to_str().unwrap().to_owned();
            match (host.as_str(), req.uri().path(), req.uri().query()) {
                ("a.test", "/moved", Some("x=1")) => redirect("http://B.test/final#frag"),
                ("a.test", _, _) => redirect("/moved?x=1"),
                ("b.test", "/final", None) => reply(200, KEY_AUTHZ),
                _ => reply(404, ""),
            }
        })
        .await;
        let (_dns, va) = va_for(port).await;
        va.validate(&http01(Identifier::dns("a.test")))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn redirects_to_https_use_the_tls_port() {
        let https_port = https_server("b.test", |req| async move {
            let host = req.headers()[HOST].to_str().unwrap().to_owned();
            match (host.as_str(), req.uri().path()) {
                ("b.test", "/final") => reply(200, KEY_AUTHZ),
                _ => reply(404, ""),
            }
        })
        .await;
        let http_port = http_server(|_| async { redirect("https://b.test/final") }).await;
        let dns = TestDnsServer::start().await.unwrap();
        let va = Va::new(settings(&dns, http_port, https_port)).unwrap();
        va.validate(&http01(Identifier::dns("a.test")))
            .await
            .unwrap();

        // Nothing speaks TLS on the http port: the handshake fails as a tls problem.
        let va = Va::new(settings(&dns, http_port, http_port)).unwrap();
        let p = va
            .validate(&http01(Identifier::dns("a.test")))
            .await
            .unwrap_err();
        assert_eq!(p.kind, ProblemType::Tls, "{}", p.detail);
    }

    #[tokio::test]
    async fn redirect_loops_stop_after_ten_hops() {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let port = http_server(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { redirect("/.well-known/acme-challenge/tok_123") }
        })
        .await;
        let p = failure(port, "loop.test").await;
        assert_eq!(p.kind, ProblemType::Connection);
        assert!(p.detail.contains("too many redirects"), "{}", p.detail);
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            MAX_REDIRECTS + 1
        );
    }

    #[tokio::test]
    async fn redirects_to_other_ports_schemes_or_addresses_are_refused() {
        for (location, why) in [
            ("http://a.test:1/", "only port"),
            ("https://a.test:2/", "only port"),
            ("ftp://a.test/", "only http and https"),
            ("http://10.0.0.1/", "other IP addresses"),
            ("http://[::1]/", "other IP addresses"),
        ] {
            let port = http_server(move |_| async move { redirect(location) }).await;
            let (_dns, va) = va_for(port).await;
            let p = va
                .validate(&http01(Identifier::dns("a.test")))
                .await
                .unwrap_err();
            assert_eq!(p.kind, ProblemType::Connection, "{location}");
            assert!(p.detail.contains(why), "{location}: {}", p.detail);
        }
    }
}
