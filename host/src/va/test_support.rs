//! Fixtures for the VA tests: settings aimed at a [`TestDnsServer`], requests, a tiny hyper
//! server, a rustls server with tls-alpn-01 certificates built here, all on 127.0.0.1.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use x509_certificate::{InMemorySigningKeyPair, X509CertificateBuilder};

use crate::acme::{ChallengeType, Identifier};
use acmegate_testkit::dns::TestDnsServer;

use super::{VaSettings, ValidationRequest};

pub const ACCOUNT_URI: &str = "https://acme.test/acme/acct/1";

pub fn settings(dns: &TestDnsServer, http01_port: u16, tlsalpn01_port: u16) -> VaSettings {
    VaSettings {
        http01_port,
        tlsalpn01_port,
        dns_resolver: Some(dns.addr()),
        timeout: Duration::from_secs(5),
        max_concurrent: 8,
        caa_enabled: false,
        caa_identities: vec!["ca.example".to_owned()],
    }
}

/// A request whose token is the part of `key_authorization` before the dot.
pub fn request(
    identifier: Identifier,
    challenge: ChallengeType,
    key_authorization: &str,
) -> ValidationRequest {
    ValidationRequest {
        identifier,
        wildcard: false,
        challenge,
        token: key_authorization
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned(),
        key_authorization: key_authorization.to_owned(),
        account_uri: ACCOUNT_URI.to_owned(),
    }
}

/// A port nothing listens on (bound, then released).
pub async fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// An HTTP/1.1 server on 127.0.0.1 answering every request with `handler`; it lives as long
/// as the test's runtime.
pub async fn http_server<F, Fut>(handler: F) -> u16
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    serve_http(None, handler).await
}

/// Like [`http_server`], over TLS with a self-signed certificate for `name`.
pub async fn https_server<F, Fut>(name: &'static str, handler: F) -> u16
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (cert, key) = build_cert(&AcmeCert {
        sans: vec![San::Dns(name)],
        acme_identifier: None,
    });
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    serve_http(Some(TlsAcceptor::from(Arc::new(config))), handler).await
}

async fn serve_http<F, Fut>(tls: Option<TlsAcceptor>, handler: F) -> u16
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    accept_loop(move |stream| {
        let handler = handler.clone();
        let tls = tls.clone();
        async move {
            let service = service_fn(move |req| {
                let reply = handler(req);
                async move { Ok::<_, Infallible>(reply.await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match tls {
                None => http.serve_connection(TokioIo::new(stream), service).await,
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                    Err(_) => return,
                },
            };
        }
    })
    .await
}

/// Binds 127.0.0.1 on a free port and runs `per_connection` for every accepted stream on its
/// own task; returns the port.
async fn accept_loop<F, Fut>(per_connection: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(per_connection(stream));
        }
    });
    port
}

/// A subjectAltName entry for test certificates.
#[derive(Clone, Debug)]
pub enum San {
    Dns(&'static str),
    Ip(std::net::IpAddr),
}

/// What goes into a tls-alpn-01 test certificate.
#[derive(Clone, Debug)]
pub struct AcmeCert {
    pub sans: Vec<San>,
    /// `(critical, extnValue)` of the acmeIdentifier extension, if any.
    pub acme_identifier: Option<(bool, Vec<u8>)>,
}

impl AcmeCert {
    /// A correct certificate for `san` and `key_authorization`.
    pub fn valid(san: San, key_authorization: &str) -> Self {
        Self {
            sans: vec![san],
            acme_identifier: Some((true, acme_identifier_value(key_authorization))),
        }
    }
}

/// RFC 8737 §3: the extension value is the DER OCTET STRING of SHA-256(key authorization).
pub fn acme_identifier_value(key_authorization: &str) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    der(0x04, digest.as_ref())
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n <= 0xff => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// Builds a self-signed P-256 certificate with exactly the extensions asked for.
pub fn build_cert(spec: &AcmeCert) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let key = InMemorySigningKeyPair::from_pkcs8_der(pkcs8.as_ref()).unwrap();
    let mut builder = X509CertificateBuilder::default();
    builder
        .subject()
        .append_common_name_utf8_string("acme-tls test")
        .unwrap();
    if !spec.sans.is_empty() {
        let names: Vec<u8> = spec
            .sans
            .iter()
            .flat_map(|san| match san {
                San::Dns(name) => der(0x82, name.as_bytes()),
                San::Ip(std::net::IpAddr::V4(ip)) => der(0x87, &ip.octets()),
                San::Ip(std::net::IpAddr::V6(ip)) => der(0x87, &ip.octets()),
            })
            .collect();
        builder.add_extension_der_data(
            bcder::Oid(Bytes::from_static(&[0x55, 0x1d, 0x11])),
            false,
            der(0x30, &names),
        );
    }
    if let Some((critical, value)) = &spec.acme_identifier {
        builder.add_extension_der_data(
            bcder::Oid(Bytes::from_static(&[
                0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f,
            ])),
            *critical,
            value,
        );
    }
    let cert = builder.create_with_key_pair(&key).unwrap();
    (
        CertificateDer::from(cert.encode_der().unwrap()),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec())),
    )
}

/// Serves one certificate and records the SNI of each ClientHello.
#[derive(Debug)]
struct RecordingResolver {
    key: Arc<CertifiedKey>,
    sni: Arc<Mutex<Vec<Option<String>>>>,
}

impl ResolvesServerCert for RecordingResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.sni
            .lock()
            .unwrap()
            .push(hello.server_name().map(str::to_owned));
        Some(self.key.clone())
    }
}

/// A TLS server presenting `spec`'s certificate with the given ALPN protocols (empty: no ALPN
/// support) and TLS versions. Returns its port and the SNI values it saw.
pub async fn tls_server(
    spec: &AcmeCert,
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
) -> (u16, Arc<Mutex<Vec<Option<String>>>>) {
    let (cert, key) = build_cert(spec);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider.key_provider.load_private_key(key).unwrap();
    let sni = Arc::new(Mutex::new(Vec::new()));
    let resolver = RecordingResolver {
        key: Arc::new(CertifiedKey::new(vec![cert], signing_key)),
        sni: sni.clone(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let port = accept_loop(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            // The client decides; the server only needs to finish its side.
            let _ = acceptor.accept(stream).await;
        }
    })
    .await;
    (port, sni)
}
