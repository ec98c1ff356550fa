//! Wires the gateway together and serves it: data directory, CA, store, validation, the TLS
//! listener (HTTP/1.1 and HTTP/2) and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::ca::{Ca, CaSettings, KeySecret};
use crate::config::Config;
use crate::nonce::NoncePool;
use crate::store::Store;
use crate::va::{Va, VaSettings};
use crate::wfe::{self, directory, Gateway};

/// Environment variable holding the CA key passphrase (preferred over the key file).
pub const PASSPHRASE_ENV: &str = "ACMEGATE_CA_PASSPHRASE";

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    pub gateway: Arc<Gateway>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn directory_url(&self) -> String {
        self.gateway.directory_url()
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// The secret that protects the CA keys: the passphrase if given, else the key file.
pub fn key_secret(config: &Config, passphrase: Option<String>) -> KeySecret {
    match passphrase.filter(|p| !p.is_empty()) {
        Some(p) => KeySecret::Passphrase(p),
        None => KeySecret::File(config.ca.key_file.clone()),
    }
}

/// Opens the store named by the configuration (running migrations).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url();
    tokio::task::spawn_blocking(move || Store::open(&url))
        .await?
        .with_context(|| format!("failed to open the database {}", config.database_url()))
}

/// Starts the gateway: binds the listener, loads or creates the CA, opens the store.
pub async fn start(config: Config, passphrase: Option<String>) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "failed to create data directory {}",
            config.data_dir.display()
        )
    })?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.server.listen))?;
    let addr = listener
        .local_addr()
        .context("failed to read the bound address")?;
    let base_url = config.base_url(addr.port());

    let settings = CaSettings {
        root_cn: config.ca.root_cn.clone(),
        intermediate_cn: config.ca.intermediate_cn.clone(),
        organization: config.ca.organization.clone(),
        crl_url: format!("{base_url}{}", directory::CRL_PATH),
        ca_issuers_url: format!("{base_url}{}", directory::INTERMEDIATE_DER_PATH),
    };
    let secret = key_secret(&config, passphrase);
    let ca_dir = config.data_dir.join("ca");
    let ca = tokio::task::spawn_blocking(move || Ca::load_or_create(&ca_dir, &secret, &settings))
        .await?
        .context("failed to load or create the CA")?;
    let ca = Arc::new(ca);
    let store = open_store(&config).await?;

    let va = Va::new(VaSettings {
        http01_port: config.validation.http01_port,
        tlsalpn01_port: config.validation.tlsalpn01_port,
        dns_resolver: config.dns_resolver(),
        timeout: std::time::Duration::from_secs(config.validation.timeout_seconds.max(1)),
        max_concurrent: config.validation.max_concurrent.max(1),
        caa_enabled: config.validation.caa,
        caa_identities: config.acme.caa_identities.clone(),
    })
    .context("failed to set up validation")?;

    let tls = tls_acceptor(&ca, &config.server.tls_names)?;
    if config.acme.auto_approve {
        tracing::warn!("acme.auto_approve is ON: every challenge succeeds WITHOUT validation. Use only on trusted networks.");
    }
    let gateway = Arc::new(Gateway {
        profiles: config.profiles(),
        config,
        base_url,
        store,
        ca,
        va: Arc::new(va),
        nonces: NoncePool::default(),
        verifiers: Default::default(),
        crl: Default::default(),
        metrics: Default::default(),
    });
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, tls, gateway.clone(), rx));
    Ok(Running {
        addr,
        base_url: gateway.base_url.clone(),
        gateway,
        shutdown: tx,
        task,
    })
}

fn tls_acceptor(ca: &Ca, names: &[String]) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let (chain, key) = ca
        .issue_tls_server(names)
        .context("failed to issue the listener certificate")?;
    let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("failed to choose TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("failed to configure TLS")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    gw: Arc<Gateway>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let gw = gw.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(std::time::Duration::from_secs(10), tls.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let service = service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, std::convert::Infallible>(wfe::handle(gw, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    // Requests in flight finish; give them a bounded time.
    if tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within 10 s of shutdown");
    }
}
