//! Validation authority: proves control of identifiers with http-01 (RFC 8555 §8.3), dns-01
//! (§8.4) and tls-alpn-01 (RFC 8737), then checks CAA (RFC 8659, RFC 8657) for dns names.
//!
//! Every attempt runs under one deadline (`VaSettings::timeout`) and at most
//! `VaSettings::max_concurrent` attempts run at once, so a slow or hostile client target can
//! neither hold a validation forever nor exhaust the gateway.

/// Public for the `caa` fuzz target (host/fuzz): the records as DNS answers carry them, and the
/// decision.
pub mod caa;
mod dns01;
mod http01;
pub(crate) mod resolve;
pub(crate) mod tlsalpn01;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::acme::{ChallengeType, Identifier, IdentifierType, Problem};

use resolve::{Dns, LookupError};

/// Validation settings. Ports and resolver are configurable so that tests and private networks
/// can point validation somewhere other than :80/:443 and the system resolver (as Pebble does).
#[derive(Clone, Debug)]
pub struct VaSettings {
    /// Port http-01 connects to (RFC 8555 §8.3 says 80).
    pub http01_port: u16,
    /// Port tls-alpn-01 connects to (RFC 8737 says 443).
    pub tlsalpn01_port: u16,
    /// DNS server for TXT, CAA and A/AAAA lookups; `None` uses the system resolver.
    pub dns_resolver: Option<SocketAddr>,
    /// Upper bound for one validation attempt, connect to verdict.
    pub timeout: Duration,
    /// Validations running at once; more wait.
    pub max_concurrent: usize,
    /// Whether CAA is checked for dns identifiers.
    pub caa_enabled: bool,
    /// Issuer domain names this CA recognises in CAA `issue`/`issuewild` records.
    pub caa_identities: Vec<String>,
}

/// One validation to perform.
#[derive(Clone, Debug)]
pub struct ValidationRequest {
    /// The authorization's identifier (no `*.` prefix).
    pub identifier: Identifier,
    /// Whether the authorization is for a wildcard (CAA then consults `issuewild`).
    pub wildcard: bool,
    pub challenge: ChallengeType,
    pub token: String,
    /// `token || '.' || base64url(thumbprint)` (RFC 8555 §8.1).
    pub key_authorization: String,
    /// The account URL, for RFC 8657 `accounturi`.
    pub account_uri: String,
}

/// The validation authority.
#[derive(Debug)]
pub struct Va {
    settings: VaSettings,
    dns: Dns,
    slots: Semaphore,
    /// TLS client for tls-alpn-01: ALPN `acme-tls/1` only.
    tls_alpn: Arc<ClientConfig>,
    /// TLS client for http-01 redirects to https: ALPN `http/1.1`.
    https: Arc<ClientConfig>,
}

impl Va {
    pub fn new(settings: VaSettings) -> Result<Va, std::io::Error> {
        let dns = Dns::new(settings.dns_resolver, settings.timeout)?;
        // Zero permits would make every validation wait forever; one is the least that works.
        let slots = Semaphore::new(settings.max_concurrent.max(1));
        Ok(Va {
            dns,
            slots,
            tls_alpn: tlsalpn01::client_config(&[tlsalpn01::ACME_TLS_ALPN])?,
            https: tlsalpn01::client_config(&[b"http/1.1"])?,
            settings,
        })
    }

    /// Performs the challenge and, for dns identifiers when enabled, the CAA check. `Ok` means
    /// proven; `Err` carries the problem to store on the challenge (`connection`, `dns`, `tls`,
    /// `incorrectResponse`, `unauthorized`, `caa`, ...).
    pub async fn validate(&self, req: &ValidationRequest) -> Result<(), Problem> {
        // Waiting for a slot is outside the deadline: the timeout bounds the attempt itself.
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| Problem::server_internal("the validation authority is shut down"))?;
        let limit = self.settings.timeout;
        let outcome = match tokio::time::timeout(limit, self.attempt(req)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Problem::connection(format!(
                "{} validation of {} timed out after {}s",
                req.challenge,
                req.identifier,
                limit.as_secs_f64()
            ))),
        };
        let (identifier, challenge) = (&req.identifier, req.challenge);
        match &outcome {
            Ok(()) => tracing::info!(%identifier, %challenge, "validation succeeded"),
            Err(problem) => tracing::info!(%identifier, %challenge, %problem, "validation failed"),
        }
        outcome
    }

    async fn attempt(&self, req: &ValidationRequest) -> Result<(), Problem> {
        let target = Target::of(&req.identifier)?;
        match req.challenge {
            ChallengeType::Http01 => http01::validate(self, req, &target).await?,
            ChallengeType::Dns01 => dns01::validate(self, req, &target).await?,
            ChallengeType::TlsAlpn01 => tlsalpn01::validate(self, req, &target).await?,
        }
        if self.settings.caa_enabled && matches!(target, Target::Dns(_)) {
            caa::check(self, req).await?;
        }
        Ok(())
    }

    /// The addresses to connect to for `target`: IP identifiers as they are (RFC 8738 §7),
    /// dns names through the validation resolver.
    async fn addresses(&self, target: &Target) -> Result<Vec<IpAddr>, Problem> {
        match target {
            Target::Ip(ip) => Ok(vec![*ip]),
            Target::Dns(name) => self.dns.ips(name).await.map_err(|e| match e {
                LookupError::NotFound => {
                    Problem::dns(format!("no A or AAAA records found for {name}"))
                }
                LookupError::Failed(why) => Problem::dns(format!(
                    "DNS lookup of A/AAAA records for {name} failed: {why}"
                )),
            }),
        }
    }

    /// Connects to `target` on `port`, trying its addresses in order.
    async fn connect(
        &self,
        target: &Target,
        port: u16,
    ) -> Result<(TcpStream, SocketAddr), Problem> {
        let mut failures = Vec::new();
        for ip in self.addresses(target).await? {
            let addr = SocketAddr::new(ip, port);
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok((stream, addr)),
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        Err(Problem::connection(format!(
            "could not connect to {target} ({})",
            failures.join("; ")
        )))
    }
}

/// A validated identifier in the form the challenges need.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Dns(String),
    Ip(IpAddr),
}

impl Target {
    fn of(identifier: &Identifier) -> Result<Target, Problem> {
        match identifier.kind {
            IdentifierType::Dns => Ok(Target::Dns(
                identifier.value.trim_end_matches('.').to_ascii_lowercase(),
            )),
            IdentifierType::Ip => {
                identifier.value.parse().map(Target::Ip).map_err(|_| {
                    Problem::malformed(format!("{identifier} is not a valid IP address"))
                })
            }
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Dns(name) => f.write_str(name),
            Target::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// SHA-256 of the key authorization: the digest dns-01 (RFC 8555 §8.4) and tls-alpn-01
/// (RFC 8737 §3) publish.
fn key_authorization_digest(key_authorization: &str) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes())
}

/// Shortens text from the client's side for a problem detail: at most 128 characters, quoted
/// and escaped so that control characters cannot forge log lines.
fn excerpt(text: &str) -> String {
    const MAX: usize = 128;
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX).collect();
    if chars.next().is_some() {
        format!("{head:?} (truncated)")
    } else {
        format!("{head:?}")
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::ProblemType;
    use acmegate_testkit::dns::TestDnsServer;
    use bytes::Bytes;
    use http::Response;
    use http_body_util::Full;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;
    use test_support::{http_server, request, settings, ACCOUNT_URI};
    use tokio::net::TcpListener;

    const KEY_AUTHZ: &str = "tok.thumbprint";

    fn key_authz_reply() -> Response<Full<Bytes>> {
        Response::new(Full::new(Bytes::from_static(KEY_AUTHZ.as_bytes())))
    }

    /// Accepts connections and never says a word.
    async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        (port, task)
    }

    #[tokio::test]
    async fn a_silent_server_times_out_as_a_connection_problem() {
        let (port, _task) = silent_server().await;
        let dns = TestDnsServer::start().await.unwrap();
        let mut s = settings(&dns, port, port);
        s.timeout = Duration::from_millis(300);
        let va = Va::new(s).unwrap();
        for challenge in [ChallengeType::Http01, ChallengeType::TlsAlpn01] {
            let started = Instant::now();
            let p = va
                .validate(&request(Identifier::dns("slow.test"), challenge, KEY_AUTHZ))
                .await
                .unwrap_err();
            let took = started.elapsed();
            assert_eq!(p.kind, ProblemType::Connection, "{challenge}");
            assert!(p.detail.contains("timed out after 0.3s"), "{}", p.detail);
            assert!(took >= Duration::from_millis(300), "{took:?}");
            assert!(took < Duration::from_secs(2), "{took:?}");
        }
    }

    #[tokio::test]
    async fn the_semaphore_bounds_concurrent_validations() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (r, p) = (running.clone(), peak.clone());
        let port = http_server(move |_| {
            let (running, peak) = (r.clone(), p.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                key_authz_reply()
            }
        })
        .await;
        let dns = TestDnsServer::start().await.unwrap();
        let mut s = settings(&dns, port, 0);
        s.max_concurrent = 2;
        let va = Arc::new(Va::new(s).unwrap());
        let mut jobs = tokio::task::JoinSet::new();
        for i in 0..6 {
            let va = va.clone();
            jobs.spawn(async move {
                let name = format!("host{i}.test");
                va.validate(&request(
                    Identifier::dns(name),
                    ChallengeType::Http01,
                    KEY_AUTHZ,
                ))
                .await
            });
        }
        while let Some(outcome) = jobs.join_next().await {
            outcome.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    /// http-01 passes; CAA then decides, through real DNS lookups.
    async fn caa_va() -> (TestDnsServer, Va) {
        let port = http_server(|_| async { key_authz_reply() }).await;
        let dns = TestDnsServer::start().await.unwrap();
        let mut s = settings(&dns, port, 0);
        s.caa_enabled = true;
        (dns, Va::new(s).unwrap())
    }

    #[tokio::test]
    async fn caa_is_checked_end_to_end_through_dns() {
        let (dns, va) = caa_va().await;
        let www = request(
            Identifier::dns("www.example.test"),
            ChallengeType::Http01,
            KEY_AUTHZ,
        );
        // No CAA anywhere: allowed.
        va.validate(&www).await.unwrap();

        // A parent's RRset is found by climbing and names another CA.
        dns.set_caa("example.test", vec![(0, "issue", "other.example")]);
        let p = va.validate(&www).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Caa);
        assert!(p.detail.contains("example.test"), "{}", p.detail);
        assert!(p.detail.contains("other.example"), "{}", p.detail);

        // A closer RRset takes precedence.
        let allow = format!("ca.example; accounturi={ACCOUNT_URI}; validationmethods=http-01");
        dns.set_caa("www.example.test", vec![(0, "issue", allow.as_str())]);
        va.validate(&www).await.unwrap();

        // Wildcards read issuewild.
        dns.set_caa(
            "www.example.test",
            vec![(0, "issue", "ca.example"), (0, "issuewild", ";")],
        );
        let mut wild = www.clone();
        wild.wildcard = true;
        assert_eq!(va.validate(&wild).await.unwrap_err().kind, ProblemType::Caa);
        va.validate(&www).await.unwrap();

        // Lookup failures fail closed.
        dns.set_servfail("example.test");
        dns.set_caa("www.example.test", vec![]);
        let p = va.validate(&www).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Dns);
        assert!(
            p.detail.contains("CAA lookup for example.test failed"),
            "{}",
            p.detail
        );
    }

    #[tokio::test]
    async fn caa_is_not_consulted_for_ip_identifiers_or_when_disabled() {
        let (dns, va) = caa_va().await;
        dns.set_caa("test", vec![(0, "issue", ";")]);
        let ip = request(
            Identifier::ip(IpAddr::from([127, 0, 0, 1])),
            ChallengeType::Http01,
            KEY_AUTHZ,
        );
        va.validate(&ip).await.unwrap();
        let name = request(Identifier::dns("a.test"), ChallengeType::Http01, KEY_AUTHZ);
        assert_eq!(va.validate(&name).await.unwrap_err().kind, ProblemType::Caa);

        let port = http_server(|_| async { key_authz_reply() }).await;
        let va = Va::new(settings(&dns, port, 0)).unwrap();
        va.validate(&name).await.unwrap();
    }

    #[tokio::test]
    async fn malformed_ip_identifiers_are_refused() {
        let dns = TestDnsServer::start().await.unwrap();
        let va = Va::new(settings(&dns, 1, 1)).unwrap();
        let mut req = request(Identifier::dns("x"), ChallengeType::Http01, KEY_AUTHZ);
        req.identifier.kind = IdentifierType::Ip;
        req.identifier.value = "300.1.1.1".into();
        assert_eq!(
            va.validate(&req).await.unwrap_err().kind,
            ProblemType::Malformed
        );
    }

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt("a\nb"), "\"a\\nb\"");
        let long = "y".repeat(500);
        let e = excerpt(&long);
        assert!(e.ends_with("(truncated)"));
        assert!(e.len() < 150);
    }

    #[tokio::test]
    async fn zero_concurrency_is_raised_to_one() {
        let dns = TestDnsServer::start().await.unwrap();
        let mut s = settings(&dns, 1, 1);
        s.max_concurrent = 0;
        assert_eq!(Va::new(s.clone()).unwrap().slots.available_permits(), 1);
        s.max_concurrent = 3;
        assert_eq!(Va::new(s).unwrap().slots.available_permits(), 3);
    }

    #[tokio::test]
    async fn the_system_resolver_is_used_when_none_is_configured() {
        let dns = TestDnsServer::start().await.unwrap();
        let mut s = settings(&dns, 1, 1);
        s.dns_resolver = None;
        // read_system_conf needs a resolv.conf with a nameserver; where one exists it loads.
        let has_resolv_conf = std::fs::read_to_string("/etc/resolv.conf").is_ok_and(|text| {
            text.lines()
                .any(|l| l.trim_start().starts_with("nameserver"))
        });
        assert_eq!(Va::new(s).is_ok(), has_resolv_conf);
    }
}
