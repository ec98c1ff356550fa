//! Validation authority: proves control of identifiers with http-01 (RFC 8555 §8.3), dns-01
//! (§8.4) and tls-alpn-01 (RFC 8737), then checks CAA (RFC 8659, RFC 8657) for dns names.
//!
//! Every attempt runs under one deadline (`VaSettings::timeout`) and at most
//! `VaSettings::max_concurrent` attempts run at once, so a slow or hostile client target can
//! neither hold a validation forever nor exhaust the gateway.

mod caa;
mod dns01;
mod http01;
mod resolve;
mod tlsalpn01;

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
            tls_alpn: tlsalpn01::client_config(tlsalpn01::ACME_TLS_ALPN)?,
            https: tlsalpn01::client_config(b"http/1.1")?,
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
        match &outcome {
            Ok(()) => tracing::info!(identifier = %req.identifier, challenge = %req.challenge, "validation succeeded"),
            Err(p) => tracing::info!(identifier = %req.identifier, challenge = %req.challenge, problem = %p, "validation failed"),
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
                LookupError::Failed(why) => {
                    Problem::dns(format!("DNS lookup of A/AAAA records for {name} failed: {why}"))
                }
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
            IdentifierType::Ip => identifier.value.parse().map(Target::Ip).map_err(|_| {
                Problem::malformed(format!("{identifier} is not a valid IP address"))
            }),
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
mod test_support;
