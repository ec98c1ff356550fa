//! Wires the gateway together and serves it: data directory, CA, store, validation, the TLS
//! listener (HTTP/1.1 and HTTP/2) and graceful shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::admin::tls::AdminTls;
use crate::authority::issuance::{self, Issuer};
use crate::authority::{Clock, Gateway};
use crate::ca::{Ca, CaSettings, KeySecret};
use crate::config::Config;
use crate::metrics::Listener;
use crate::nonce::{NoncePool, Nonces, SealedNonces};
use crate::plugins::watcher::{Reloadable, Watched};
use crate::plugins::{PluginRuntime, RuntimeOptions, StateBacking, ValidatorPlugin};
use crate::store::{CaPin, PluginSwitches, Store};
use crate::va::{Va, VaSettings};
use crate::wfe::{self, directory};

/// Environment variable holding the CA key passphrase (preferred over the key file).
pub const PASSPHRASE_ENV: &str = "ACMEGATE_CA_PASSPHRASE";

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    /// The mTLS admin listener's address, when `admin.listen` is set.
    pub admin_addr: Option<SocketAddr>,
    /// The plain-HTTP listener's address, when `server.http_listen` is set.
    pub pki_addr: Option<SocketAddr>,
    /// Where certificates tell relying parties to fetch the CRL and CA certificates.
    pub pki_url: String,
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

/// Purpose of the audit log's HMAC key, derived from the CA key secret.
const AUDIT_KEY_PURPOSE: &[u8] = b"acmegate audit log v1";
/// Purpose of the key that seals nonces, derived from the CA key secret, which every replica
/// of one PKI holds.
const NONCE_KEY_PURPOSE: &[u8] = b"acmegate nonces v1";
/// Purpose of the key behind the console's anti-forgery form tokens: derived from the CA key
/// secret so that a form one replica served is accepted by every other.
const FORM_KEY_PURPOSE: &[u8] = b"acmegate console forms v1";

/// Nonces for a gateway on `store`: in memory when one process owns the database (SQLite),
/// sealed and redeemed in the database when replicas may share it (PostgreSQL).
fn nonces_for(store: &Store, secret: &KeySecret) -> anyhow::Result<Nonces> {
    if store.backend() == "sqlite" {
        return Ok(Nonces::Local(NoncePool::default()));
    }
    let key = crate::ca::purpose_hmac_key(secret, NONCE_KEY_PURPOSE)
        .context("failed to derive the nonce key")?;
    Ok(Nonces::Sealed(SealedNonces::new(key)))
}

/// Opens the store named by the configuration (running migrations), signing its audit
/// entries with a key derived from the CA key secret.
pub async fn open_store(config: &Config, passphrase: Option<String>) -> anyhow::Result<Store> {
    let url = config.database_url();
    let secret = key_secret(config, passphrase);
    let (store, key) = tokio::task::spawn_blocking(move || {
        (
            Store::open(&url),
            crate::ca::purpose_hmac_key(&secret, AUDIT_KEY_PURPOSE),
        )
    })
    .await?;
    let store =
        store.with_context(|| format!("failed to open the database {}", config.database_url()))?;
    let key = key.context("failed to derive the audit log key")?;
    Ok(store.with_auditor(crate::store::Auditor::new(key)))
}

/// Loads the CA from the data directory, creating it on first use. `pki_url` goes into the
/// CRL and issuer URLs of the certificates it issues (`server.pki_url`).
pub async fn load_ca(
    config: &Config,
    passphrase: Option<String>,
    pki_url: &str,
) -> anyhow::Result<Arc<Ca>> {
    let settings = CaSettings {
        root_cn: config.ca.root_cn.clone(),
        intermediate_cn: config.ca.intermediate_cn.clone(),
        organization: config.ca.organization.clone(),
        crl_url: format!("{pki_url}{}", directory::CRL_PATH),
        ca_issuers_url: format!("{pki_url}{}", directory::INTERMEDIATE_DER_PATH),
    };
    let secret = key_secret(config, passphrase);
    let ca_dir = config.data_dir.join("ca");
    let ca = tokio::task::spawn_blocking(move || Ca::load_or_create(&ca_dir, &secret, &settings))
        .await?
        .context("failed to load or create the CA")?;
    Ok(Arc::new(ca))
}

/// The store and the CA, checked to belong together. The first gateway to start on a database
/// pins its CA there (fingerprints of the root and intermediate); a later one (another replica,
/// or this one after its data directory was lost) whose data directory holds no CA refuses to
/// create a second one for that database, and one whose CA is another refuses to start.
pub async fn open_pki(
    config: &Config,
    passphrase: Option<String>,
    pki_url: &str,
) -> anyhow::Result<(Arc<Ca>, Store)> {
    let store = open_store(config, passphrase.clone()).await?;
    let database = crate::store::redacted_url(&config.database_url());
    let ca_dir = std::path::absolute(config.data_dir.join("ca"))
        .unwrap_or_else(|_| config.data_dir.join("ca"));
    let pinned = store
        .call(|s| s.ca_pin())
        .await
        .context("failed to read which CA the database belongs to")?;
    if let Some(pin) = &pinned {
        if !Ca::exists_in(&ca_dir) {
            anyhow::bail!(
                "the database {database} belongs to the CA whose root certificate has SHA-256 {} \
                 (pinned {}), and {} holds no CA: copy the ca/ directory of a gateway of this PKI \
                 there (it needs the same CA key secret); acmegate never creates a second CA for \
                 a database that has one",
                pin.root_sha256,
                crate::reply::rfc3339(pin.pinned_at),
                ca_dir.display()
            );
        }
    }
    let ca = load_ca(config, passphrase, pki_url).await?;
    let (root_sha256, intermediate_sha256) = ca.fingerprints();
    let ours = CaPin {
        root_sha256,
        intermediate_sha256,
        pinned_at: chrono::Utc::now().timestamp(),
    };
    let pin = ours.clone();
    let held = store
        .call(move |s| s.pin_ca(&pin))
        .await
        .context("failed to record which CA the database belongs to")?;
    if (&held.root_sha256, &held.intermediate_sha256)
        != (&ours.root_sha256, &ours.intermediate_sha256)
    {
        anyhow::bail!(
            "the CA in {} (root SHA-256 {}) is not the CA of the database {database} (root \
             SHA-256 {}, pinned {}): give this gateway that PKI's ca/ directory, or a database of \
             its own",
            ca_dir.display(),
            ours.root_sha256,
            held.root_sha256,
            crate::reply::rfc3339(held.pinned_at)
        );
    }
    tracing::info!(
        data_dir = %std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone()).display(),
        ca_dir = %ca_dir.display(),
        root_sha256 = %held.root_sha256,
        "CA of this database"
    );
    Ok((ca, store))
}

/// Switches off the plugins an admin disabled (the admin API keeps its switches in the
/// database, so they outlive this process and hold on every replica). Returns the switches
/// applied: the replica follows changes from exactly these, so a switch made on another
/// replica before its first look is not mistaken for the starting point.
async fn apply_plugin_switches(
    store: &Store,
    runtime: &PluginRuntime,
) -> anyhow::Result<PluginSwitches> {
    let switches = store
        .call(|s| s.plugin_switches())
        .await
        .context("failed to read the plugin switches")?;
    for (name, enabled) in &switches {
        if !enabled {
            runtime.set_enabled(name, false);
            tracing::warn!(plugin = %name, "plugin disabled by an admin; enable it over the admin API");
        }
    }
    Ok(switches)
}

/// Takes back at once the work (issuance and validation jobs) leased to a process that is
/// known to be gone: this process's earlier life, or on SQLite, which one process owns, anyone.
/// Other leases are left to run out.
async fn resume_unfinished_work(
    store: &crate::store::Store,
    instance: &crate::instance::Instance,
) -> anyhow::Result<()> {
    let whose = if store.backend() == "sqlite" {
        None
    } else if instance.resumes_earlier_life {
        Some(instance.owner.clone())
    } else {
        return Ok(());
    };
    let released = store
        .call(move |s| s.release_leases(whose.as_deref()))
        .await
        .context("failed to resume unfinished work")?;
    if released > 0 {
        tracing::info!(
            jobs = released,
            "resuming unfinished issuance and validation"
        );
    }
    Ok(())
}

/// Starts the gateway: binds the listener, loads or creates the CA, opens the store.
pub async fn start(config: Config, passphrase: Option<String>) -> anyhow::Result<Running> {
    start_at(config, passphrase, Clock::system()).await
}

/// [`start`] with the authority reading time from `clock` (tests move it instead of sleeping).
pub async fn start_at(
    config: Config,
    passphrase: Option<String>,
    clock: Clock,
) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "failed to create data directory {}",
            config.data_dir.display()
        )
    })?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("failed to bind server.listen = {}", config.server.listen))?;
    let addr = listener
        .local_addr()
        .context("failed to read the bound address")?;
    let base_url = config.base_url(addr.port());
    if config.server.base_url.is_empty() {
        tracing::warn!(%base_url, "server.base_url is not set: ACME URLs and the CRL and CA certificate URLs in every certificate name {base_url}, which only this machine reaches; set server.base_url (and server.http_listen for relying parties) before issuing for other machines");
    }
    let pki = match config.server.http_listen_addr() {
        None => None,
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("failed to bind server.http_listen = {addr}"))?,
        ),
    };
    let pki_addr = match &pki {
        Some(listener) => Some(
            listener
                .local_addr()
                .context("failed to read the plain-HTTP address")?,
        ),
        None => None,
    };
    let pki_url = config.server.pki_url(pki_addr.map(|a| a.port()), &base_url);

    let secret = key_secret(&config, passphrase.clone());
    let (ca, store) = open_pki(&config, passphrase, &pki_url).await?;
    let nonces = nonces_for(&store, &secret)?;
    let form_key = crate::ca::purpose_hmac_key(&secret, FORM_KEY_PURPOSE)
        .context("failed to derive the console form key")?;
    let instance = crate::instance::Instance::of(&config.data_dir)?;
    resume_unfinished_work(&store, &instance).await?;
    let mut issuers = BTreeMap::from([(
        crate::ca::BUILTIN_ISSUER.to_string(),
        Issuer::Builtin(ca.clone()),
    )]);
    let loaded = load_plugins(&config, &secret, &store, &mut issuers, &clock).await?;
    let switches = match &loaded.runtime {
        Some(runtime) => apply_plugin_switches(&store, runtime).await?,
        None => PluginSwitches::new(),
    };
    let watched = loaded.watched.clone();

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
    let admin = match config.admin.listen_addr() {
        None => None,
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("failed to bind admin.listen = {addr}"))?;
            let tls = AdminTls::new(&ca, &config.server.tls_names, &config.admin.client_ca_files)
                .context("failed to set up the admin listener")?;
            Some((listener, Arc::new(tls)))
        }
    };
    let admin_addr = match &admin {
        Some((listener, _)) => Some(
            listener
                .local_addr()
                .context("failed to read the admin address")?,
        ),
        None => None,
    };
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
        nonces,
        verifiers: Default::default(),
        crl: Default::default(),
        clock,
        metrics: Default::default(),
        issuance: issuance::Queue::new(instance),
        issuers,
        plugins: loaded.runtime,
        challenge_plugins: loaded.challenge_plugins,
        order_policy: loaded.order_policy,
        notifiers: loaded.notifiers,
        targets: loaded.targets,
        deployments: Default::default(),
        managed_key: Arc::new(
            crate::ca::purpose_key(&secret, crate::authority::managed::KEY_PURPOSE)
                .context("failed to derive the managed keys' sealing key")?,
        ),
        plugin_reloads: Default::default(),
        loaded_plugins: watched.clone(),
        form_key,
    });
    // Before serving: renewalInfo answers "renew now" for a retired issuer's certificates from
    // the first request on.
    crate::authority::renewal::retire_issuers(&gateway, &gateway.config.issuance.retired_issuers)
        .await
        .context("failed to move the renewal windows of the retired issuers' certificates")?;
    crate::authority::managed::declare_configured(&gateway)
        .await
        .context("failed to declare the [[managed]] certificates")?;
    let (tx, rx) = watch::channel(false);
    let worker = issuance::spawn_worker(gateway.clone(), rx.clone());
    let managed = crate::authority::managed::spawn_worker(gateway.clone(), rx.clone());
    let validations = crate::authority::validation::spawn_worker(gateway.clone(), rx.clone());
    // Always: deployments owed from before (a target since removed, a replica that died) are
    // settled even by a gateway that has no targets now.
    let deployments = crate::authority::deploy::spawn_worker(gateway.clone(), rx.clone());
    // Expiry notices only matter to notifiers.
    let housekeeping = crate::authority::housekeeping::spawn(gateway.clone(), switches, rx.clone());
    let retention = gateway
        .config
        .retention
        .enabled
        .then(|| crate::authority::retention::spawn(gateway.clone(), rx.clone()));
    let expiry = (!gateway.notifiers.is_empty())
        .then(|| crate::authority::expiry::spawn(gateway.clone(), rx.clone()));
    let reloader = match (&gateway.plugins, watched.is_empty()) {
        (Some(runtime), false) => Some(
            crate::plugins::watcher::spawn(
                runtime.clone(),
                watched,
                gateway.plugin_reloads.clone(),
                gateway.store.clone(),
                rx.clone(),
            )
            .context("failed to watch the plugin files")?,
        ),
        _ => None,
    };
    let accept = tokio::spawn(accept_loop(
        listener,
        Front::Acme(tls),
        gateway.clone(),
        rx.clone(),
    ));
    let pki_accept = pki.map(|listener| {
        tracing::info!(addr = ?pki_addr, %pki_url, "CA certificates and CRLs served over plain HTTP");
        tokio::spawn(accept_loop(
            listener,
            Front::Pki,
            gateway.clone(),
            rx.clone(),
        ))
    });
    let admin_accept = admin.map(|(listener, tls)| {
        tracing::info!(addr = ?admin_addr, "admin API listening (mTLS)");
        tokio::spawn(accept_loop(
            listener,
            Front::Admin(tls),
            gateway.clone(),
            rx,
        ))
    });
    let task = tokio::spawn(async move {
        let _ = accept.await;
        if let Some(admin) = admin_accept {
            let _ = admin.await;
        }
        if let Some(pki) = pki_accept {
            let _ = pki.await;
        }
        let _ = worker.await;
        let _ = validations.await;
        let _ = deployments.await;
        let _ = managed.await;
        for task in housekeeping {
            let _ = task.await;
        }
        if let Some(expiry) = expiry {
            let _ = expiry.await;
        }
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        if let Some(reloader) = reloader {
            let _ = reloader.await;
        }
    });
    Ok(Running {
        addr,
        admin_addr,
        pki_addr,
        pki_url,
        base_url: gateway.base_url.clone(),
        gateway,
        shutdown: tx,
        task,
    })
}

/// The plugins the gateway uses, loaded at start.
#[derive(Default)]
struct LoadedPlugins {
    runtime: Option<PluginRuntime>,
    challenge_plugins: BTreeMap<String, ValidatorPlugin>,
    order_policy: Option<ValidatorPlugin>,
    notifiers: Vec<crate::plugins::NotifierPlugin>,
    targets: Vec<crate::authority::deploy::Target>,
    /// Every loaded plugin, for the hot-reload watcher.
    watched: Vec<Watched>,
}

/// Loads one configured plugin into `runtime` as its kind (compile or cache, version check,
/// describe + configure canary).
pub async fn load_configured(
    runtime: &PluginRuntime,
    entry: &crate::plugins::PluginConfig,
) -> anyhow::Result<Watched> {
    let spec = entry.spec().map_err(anyhow::Error::msg)?;
    let failed = || format!("failed to load plugin {:?}", entry.name);
    let plugin = match entry.kind.as_str() {
        "challenge-validator" => Reloadable::Validator(
            runtime
                .load_validator(spec.clone())
                .await
                .with_context(failed)?,
        ),
        "notifier" => Reloadable::Notifier(
            runtime
                .load_notifier(spec.clone())
                .await
                .with_context(failed)?,
        ),
        "target-deployer" => Reloadable::Deployer(
            runtime
                .load_deployer(spec.clone())
                .await
                .with_context(failed)?,
        ),
        _ => Reloadable::Issuer(
            runtime
                .load_issuer(spec.clone())
                .await
                .with_context(failed)?,
        ),
    };
    Ok(Watched { spec, plugin })
}

/// The runtime for `config`'s plugins; `state` keeps their key-value state (in memory when
/// `None`); `clock` times their quarantines (the gateway's clock).
pub fn plugin_runtime(
    config: &Config,
    state: Option<StateBacking>,
    clock: Clock,
) -> anyhow::Result<PluginRuntime> {
    PluginRuntime::new(RuntimeOptions {
        cache_dir: Some(config.data_dir.join("plugin-cache")),
        state,
        dns_server: config.dns_resolver(),
        clock,
    })
    .context("failed to start the plugin runtime")
}

/// Loads the configured plugins: issuer connectors into `issuers`, challenge validators for
/// the challenge types and the newOrder policy they are mapped to. A plugin that fails its
/// canary, or does not handle the challenge type it is mapped to, stops the start.
async fn load_plugins(
    config: &Config,
    secret: &KeySecret,
    store: &Store,
    issuers: &mut BTreeMap<String, Issuer>,
    clock: &Clock,
) -> anyhow::Result<LoadedPlugins> {
    if config.plugins.is_empty() {
        return Ok(LoadedPlugins::default());
    }
    // Plugin state is sealed under a key derived from the CA key secret.
    let key = crate::ca::purpose_key(secret, b"acmegate plugin state v1")
        .context("failed to derive the plugin state key")?;
    let state = StateBacking {
        store: store.clone(),
        key: Arc::new(key),
    };
    let runtime = plugin_runtime(config, Some(state), clock.clone())?;
    let mut validators = BTreeMap::new();
    let mut notifiers = Vec::new();
    let mut deployers = BTreeMap::new();
    let mut watched = Vec::new();
    for entry in &config.plugins {
        let Watched { spec, plugin } = load_configured(&runtime, entry).await?;
        match &plugin {
            Reloadable::Validator(p) => {
                validators.insert(entry.name.clone(), p.clone());
            }
            Reloadable::Issuer(p) => {
                issuers.insert(entry.name.clone(), Issuer::Plugin(p.clone()));
            }
            Reloadable::Notifier(p) => notifiers.push(p.clone()),
            Reloadable::Deployer(p) => {
                deployers.insert(entry.name.clone(), p.clone());
            }
        }
        let info = plugin.info();
        let event = crate::store::Event::new(
            "plugin.load",
            format!("plugin/{}", entry.name),
            serde_json::json!({ "kind": info.kind.name(), "version": info.version, "path": spec.path }),
        );
        crate::plugins::watcher::record(store, event).await;
        watched.push(Watched { spec, plugin });
    }
    let mut challenge_plugins = BTreeMap::new();
    for (challenge, name) in &config.validation.challenge_plugins {
        let plugin = validators
            .get(name)
            .with_context(|| format!("challenge plugin {name:?} is not loaded"))?;
        if let crate::plugins::PluginKind::ChallengeValidator {
            challenge_types, ..
        } = plugin.info().kind
        {
            if !challenge_types.contains(challenge) {
                anyhow::bail!(
                    "plugin {name:?} is mapped to {challenge} but validates only {challenge_types:?}"
                );
            }
        }
        challenge_plugins.insert(challenge.clone(), plugin.clone());
    }
    let order_policy = match config.validation.order_policy.as_str() {
        "" => None,
        name => Some(
            validators
                .get(name)
                .cloned()
                .with_context(|| format!("order policy plugin {name:?} is not loaded"))?,
        ),
    };
    let targets = config
        .targets
        .iter()
        .map(|target| {
            let deployer = deployers
                .get(&target.deployer)
                .cloned()
                .with_context(|| format!("deployer plugin {:?} is not loaded", target.deployer))?;
            crate::authority::deploy::Target::new(target, deployer).map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(LoadedPlugins {
        runtime: Some(runtime),
        challenge_plugins,
        order_policy,
        notifiers,
        targets,
        watched,
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

/// What a listener serves.
enum Front {
    /// ACME and the public routes, server-authenticated TLS.
    Acme(TlsAcceptor),
    /// The admin API: client certificates checked against the CA and its current CRL.
    Admin(Arc<AdminTls>),
    /// CA certificates and CRLs over plain HTTP.
    Pki,
}

/// Serves `served` until it ends or has had no request in flight for `client_timeout`.
async fn finish(
    peer: SocketAddr,
    served: ServedConnection,
    activity: &crate::idle::Activity,
    client_timeout: std::time::Duration,
) {
    let result = tokio::select! {
        result = served => result,
        // Dropping the connection closes it.
        () = activity.idle_for(client_timeout) => Ok(()),
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A connection being served, whichever listener's service it runs.
type ServedConnection = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
            + Send,
    >,
>;

async fn accept_loop(
    listener: TcpListener,
    front: Front,
    gw: Arc<Gateway>,
    mut stop: watch::Receiver<bool>,
) {
    let front = Arc::new(front);
    let which = match *front {
        Front::Acme(_) => Listener::Acme,
        Front::Admin(_) => Listener::Admin,
        Front::Pki => Listener::Pki,
    };
    let slots = Arc::new(Semaphore::new(gw.config.server.max_connections.max(1)));
    let client_timeout = gw.config.server.client_timeout();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        // At the cap, the next connection waits in the kernel's queue until one closes.
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                gw.metrics.connection_held(which);
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        };
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
        let front = front.clone();
        let gw = gw.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let counted = gw.clone();
            let _open = counted.metrics.connection(which);
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // A request's headers must arrive within `client_timeout` (HTTP/1.1); HTTP/2 peers
            // that stop answering pings are dropped; and a connection with no request in
            // flight for as long is closed (`idle`).
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(client_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(client_timeout)
                .keep_alive_timeout(client_timeout);
            let activity = crate::idle::Activity::new();
            let tls = match &*front {
                Front::Acme(tls) => tls.clone(),
                Front::Admin(admin) => match admin.acceptor(&gw).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        tracing::error!(error = %e, "admin listener: no TLS configuration");
                        return;
                    }
                },
                Front::Pki => {
                    let tracked = activity.clone();
                    let service = service_fn(move |req| {
                        let (gw, busy) = (gw.clone(), tracked.begin());
                        async move {
                            let reply = wfe::handle_pki(gw, req).await;
                            drop(busy);
                            Ok::<_, std::convert::Infallible>(reply)
                        }
                    });
                    let io = TokioIo::new(tcp);
                    let served = watcher.watch(builder.serve_connection(io, service).into_owned());
                    finish(peer, Box::pin(served), &activity, client_timeout).await;
                    return;
                }
            };
            let stream = match tokio::time::timeout(client_timeout, tls.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let io = TokioIo::new(stream);
            let served: ServedConnection = if let Front::Admin(_) = &*front {
                // The leaf the client presented; rustls has verified its chain and CRL.
                let client_cert = io
                    .inner()
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|leaf| Arc::new(leaf.to_vec()));
                let activity = activity.clone();
                let service = service_fn(move |req| {
                    let (gw, client_cert) = (gw.clone(), client_cert.clone());
                    let busy = activity.begin();
                    async move {
                        let reply = crate::admin::handle(gw, client_cert, req).await;
                        drop(busy);
                        Ok::<_, std::convert::Infallible>(reply)
                    }
                });
                Box::pin(watcher.watch(builder.serve_connection(io, service).into_owned()))
            } else {
                let activity = activity.clone();
                let service = service_fn(move |req| {
                    let (gw, busy) = (gw.clone(), activity.begin());
                    async move {
                        let reply = wfe::handle(gw, req).await;
                        drop(busy);
                        Ok::<_, std::convert::Infallible>(reply)
                    }
                });
                Box::pin(watcher.watch(builder.serve_connection(io, service).into_owned()))
            };
            finish(peer, served, &activity, client_timeout).await;
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
