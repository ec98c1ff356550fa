//! HTTPS transport for the ACME client: one TLS connection (HTTP/2 when the server offers it,
//! else HTTP/1.1) trusting a given root, with TCP_NODELAY, reconnecting when it closes.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use super::ClientError;

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// A reusable connection to one ACME server.
pub struct Transport {
    tls: TlsConnector,
    host: String,
    port: u16,
    sender: Mutex<Option<Sender>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

fn http_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Http(e.to_string())
}

impl Transport {
    /// A transport for `https://host:port` trusting the PEM certificates in `roots_pem`.
    pub fn new(url: &http::Uri, roots_pem: &[u8]) -> Result<Transport, ClientError> {
        Self::with_identity(url, roots_pem, None)
    }

    /// [`Transport::new`], presenting a client certificate when `identity` (its chain and its
    /// key, PEM) is given: the admin API's mTLS.
    pub fn with_identity(
        url: &http::Uri,
        roots_pem: &[u8],
        identity: Option<(&[u8], &[u8])>,
    ) -> Result<Transport, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(roots_pem) {
            roots.add(cert.map_err(http_err)?).map_err(http_err)?;
        }
        if roots.is_empty() {
            return Err(ClientError::Http("no CA certificate to trust".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(http_err)?
            .with_root_certificates(roots);
        let mut cfg = match identity {
            None => cfg.with_no_client_auth(),
            Some((chain_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(chain_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| http_err(format!("client certificate: {e}")))?;
                let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| http_err(format!("client key: {e}")))?;
                cfg.with_client_auth_cert(chain, key)
                    .map_err(|e| http_err(format!("client certificate and key: {e}")))?
            }
        };
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let host = url
            .host()
            .ok_or_else(|| http_err("URL has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        Ok(Transport {
            tls: TlsConnector::from(Arc::new(cfg)),
            port: url.port_u16().unwrap_or(443),
            host,
            sender: Mutex::new(None),
        })
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(http_err)?;
        // Without it, small requests wait on delayed ACKs (~40 ms each over HTTP/2).
        tcp.set_nodelay(true).map_err(http_err)?;
        let name = rustls_pki_types::ServerName::try_from(self.host.clone()).map_err(http_err)?;
        let tls = self.tls.connect(name, tcp).await.map_err(http_err)?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(http_err)?;
            tokio::spawn(conn);
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await.map_err(http_err)?;
            tokio::spawn(conn);
            Ok(Sender::H1(sender))
        }
    }

    /// Sends one request, reconnecting once if the connection was closed.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Bytes>, ClientError> {
        let mut guard = self.sender.lock().await;
        let alive = match guard.as_ref() {
            Some(Sender::H1(s)) => !s.is_closed(),
            Some(Sender::H2(s)) => !s.is_closed(),
            None => false,
        };
        if !alive {
            *guard = Some(self.connect().await?);
        }
        let resp = match guard.as_mut() {
            Some(Sender::H1(s)) => {
                s.ready().await.map_err(http_err)?;
                s.send_request(req).await.map_err(http_err)?
            }
            Some(Sender::H2(s)) => {
                let mut s = s.clone();
                drop(guard); // HTTP/2 multiplexes: do not hold the lock while waiting
                s.ready().await.map_err(http_err)?;
                s.send_request(req).await.map_err(http_err)?
            }
            None => return Err(http_err("no connection")),
        };
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(http_err)?.to_bytes();
        Ok(Response::from_parts(parts, body))
    }
}
