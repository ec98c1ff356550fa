//! The host side of the `tls-probe` capability: connect, complete a handshake with the ALPN
//! protocols asked for, and return what the server presented. The chain is not verified (the
//! plugin decides what it trusts); the handshake signature is, against the presented key.

use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::bindings::wit::tls_probe::{ProbeRequest, ProbeResult};
use super::bindings::wit::types::CapabilityError;

/// Longest probe a plugin may ask for (connect and handshake).
pub const PROBE_MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// ALPN protocols per probe at most.
const MAX_ALPN: usize = 8;

pub(crate) async fn probe(request: ProbeRequest) -> Result<ProbeResult, CapabilityError> {
    if request.alpn.len() > MAX_ALPN || request.alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(CapabilityError::Invalid(format!(
            "offer at most {MAX_ALPN} ALPN protocols of 1 to 255 bytes"
        )));
    }
    let timeout = Duration::from_millis(request.timeout_ms.into()).min(PROBE_MAX_TIMEOUT);
    tokio::time::timeout(timeout, handshake(request))
        .await
        .map_err(|_| CapabilityError::Timeout)?
}

async fn handshake(request: ProbeRequest) -> Result<ProbeResult, CapabilityError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        CapabilityError::Failed(format!("{what} {}:{}: {e}", request.host, request.port))
    };
    let tcp = tokio::net::TcpStream::connect((request.host.as_str(), request.port))
        .await
        .map_err(|e| failed("cannot connect to", &e))?;
    let peer = tcp
        .peer_addr()
        .map_err(|e| failed("cannot read the address of", &e))?;
    // No SNI is sent for an IP address name: the peer's address when the plugin asks for none.
    let server_name = if request.server_name.is_empty() {
        ServerName::IpAddress(peer.ip().into())
    } else {
        ServerName::try_from(request.server_name.clone()).map_err(|e| {
            CapabilityError::Invalid(format!(
                "{:?} cannot be sent as SNI: {e}",
                request.server_name
            ))
        })?
    };
    let alpn: Vec<&[u8]> = request.alpn.iter().map(|p| p.as_bytes()).collect();
    let config = crate::va::tlsalpn01::client_config(&alpn)
        .map_err(|e| CapabilityError::Failed(format!("TLS client: {e}")))?;
    let tls = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| failed("TLS handshake with", &e))?;
    let (_, session) = tls.get_ref();
    let chain = session
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.to_vec()).collect())
        .unwrap_or_default();
    let protocol_version = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    };
    Ok(ProbeResult {
        chain,
        alpn: session
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        protocol_version: protocol_version.into(),
    })
}
