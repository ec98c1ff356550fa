//! The admin listener's TLS: TLS 1.2 or 1.3, a server certificate from the gateway's CA, and
//! client certificates verified against the gateway's root and intermediate (plus any
//! `admin.client_ca_files`) and the current CRL.
//!
//! rustls takes CRLs when a configuration is built, so the acceptor is rebuilt whenever the
//! gateway's CRL changes (a revocation invalidates it at once): a revoked admin certificate
//! is refused on its next handshake, without a restart. A connection without a certificate
//! completes the handshake and gets a JSON 401, which says more than a TLS alert would.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use tokio_rustls::TlsAcceptor;

use crate::authority::Gateway;
use crate::ca::Ca;

/// Builds the admin listener's acceptor, again whenever the CRL changes.
pub struct AdminTls {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    /// The CRL the current acceptor checks, and that acceptor.
    current: Mutex<Option<(Vec<u8>, TlsAcceptor)>>,
}

impl std::fmt::Debug for AdminTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTls")
            .field("trust_anchors", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl AdminTls {
    /// Trusts the gateway's CA and the PEM files in `client_ca_files`; serves a certificate
    /// for `names` from the gateway's CA.
    pub fn new(
        ca: &Ca,
        names: &[String],
        client_ca_files: &[impl AsRef<Path>],
    ) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        // The intermediate is an anchor too, so a client that sends only its leaf gets in.
        for der in [ca.root_der(), ca.intermediate_der()] {
            roots
                .add(CertificateDer::from(der))
                .context("the gateway's CA certificate is not a usable trust anchor")?;
        }
        for file in client_ca_files {
            let file = file.as_ref();
            let pem = std::fs::read(file)
                .with_context(|| format!("failed to read admin CA file {}", file.display()))?;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.with_context(|| format!("bad PEM in {}", file.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("unusable CA certificate in {}", file.display()))?;
                found += 1;
            }
            if found == 0 {
                anyhow::bail!("admin CA file {} holds no certificate", file.display());
            }
        }
        let (chain, key) = ca
            .issue_tls_server(names)
            .context("failed to issue the admin listener certificate")?;
        Ok(Self {
            roots: Arc::new(roots),
            chain: chain.into_iter().map(CertificateDer::from).collect(),
            key: PrivatePkcs8KeyDer::from(key),
            current: Mutex::new(None),
        })
    }

    /// The acceptor for the next connection: the cached one while the CRL is unchanged.
    pub async fn acceptor(&self, gw: &Gateway) -> anyhow::Result<TlsAcceptor> {
        let crl = match crate::authority::crl::current(gw).await {
            Ok(crl) => Some(crl),
            Err(problem) => {
                // The database is unreachable: keep the last acceptor. Requests still fail
                // closed, because the caller's revocation check needs the database too.
                tracing::warn!(%problem, "admin listener: CRL unavailable");
                None
            }
        };
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match (&*current, crl) {
            (Some((built_with, acceptor)), Some(crl)) if *built_with == crl => Ok(acceptor.clone()),
            (Some((_, acceptor)), None) => Ok(acceptor.clone()),
            (_, crl) => {
                let crl = crl.unwrap_or_default();
                let acceptor = self.build(&crl)?;
                *current = Some((crl, acceptor.clone()));
                Ok(acceptor)
            }
        }
    }

    fn build(&self, crl: &[u8]) -> anyhow::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let crls = (!crl.is_empty())
            .then(|| CertificateRevocationListDer::from(crl.to_vec()))
            .into_iter();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .with_crls(crls)
                // Only the gateway's own CRL is known; client CAs from `client_ca_files` and
                // intermediates have none here.
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status()
                .allow_unauthenticated()
                .build()
                .context("failed to build the client certificate verifier")?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("failed to choose TLS versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .context("failed to configure the admin listener certificate")?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(cfg)))
    }
}
