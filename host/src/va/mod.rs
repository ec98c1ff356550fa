//! Validation authority: proves control of identifiers with http-01 (RFC 8555 §8.3), dns-01
//! (§8.4) and tls-alpn-01 (RFC 8737), then checks CAA (RFC 8659, RFC 8657) for dns names.
//!
//! SKELETON: the public API below is the contract the rest of the gateway codes against.

use std::net::SocketAddr;
use std::time::Duration;

use crate::acme::{ChallengeType, Identifier, Problem};

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
    _private: (),
}

impl Va {
    pub fn new(_settings: VaSettings) -> Result<Va, std::io::Error> {
        unimplemented!("va")
    }

    /// Performs the challenge and, for dns identifiers when enabled, the CAA check. `Ok` means
    /// proven; `Err` carries the problem to store on the challenge (`connection`, `dns`, `tls`,
    /// `incorrectResponse`, `unauthorized`, `caa`, ...).
    pub async fn validate(&self, _req: &ValidationRequest) -> Result<(), Problem> {
        unimplemented!("va")
    }
}
