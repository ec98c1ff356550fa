//! The authority: the application behind the front ends. It owns what an ACME server decides
//! (accounts, orders, authorizations, challenges, finalize, revocation, profiles and EAB
//! policy) and the work that follows a decision in the background (issuance, deployment,
//! notices, expiry, retention). The ACME front end (`crate::wfe`) and the admin API (`crate::admin`)
//! turn HTTP into calls here and answers back into HTTP; nothing here knows either of them.
//! Below it sit the parts it drives through narrow types: `store`, `ca`, `va`, `plugins`.

pub mod accounts;
pub mod admin_issuance;
pub mod authorizations;
pub mod crl;
pub mod deploy;
pub mod expiry;
pub mod housekeeping;
pub mod issuance;
mod leases;
pub mod managed;
pub mod notify;
pub mod orders;
mod problems;
pub mod renewal;
pub mod retention;
pub mod revocation;
pub mod validation;

use std::sync::Arc;

use crate::ca::{Ca, Profile};
use crate::config::Config;
use crate::nonce::Nonces;
use crate::store::{Store, StoreError};
use crate::va::Va;

pub use crate::clock::Clock;
pub use problems::{ca_problem, store_problem};

/// Path prefix of every ACME resource; the authority names resources by their URLs
/// (RFC 8555 §7.1), so it knows where the front end serves them.
pub const ACME_PREFIX: &str = "/acme";

/// Runs `tick` now and then every `period` until `stop` turns true: the shape of the periodic
/// background work (expiry notices, housekeeping).
pub(crate) async fn every<F, Fut>(
    period: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut tick: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tick().await;
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => break,
        }
    }
}

/// How the audit log names an ACME account acting through its key.
pub fn acme_actor(account_id: &str) -> String {
    format!("acme:{account_id}")
}

/// The gateway's shared state: configuration, parts and plugins, one per process, shared by
/// every connection of both front ends and by the background workers.
#[derive(Debug)]
pub struct Gateway {
    pub config: Config,
    /// External base URL without a trailing slash, e.g. `https://localhost:8443`.
    pub base_url: String,
    pub store: Store,
    pub ca: Arc<Ca>,
    pub va: Arc<Va>,
    pub nonces: Nonces,
    pub verifiers: crate::jws::VerifierCache,
    pub crl: crl::CrlCache,
    /// Where every decision reads the time (RFC 8555 expiries, leases, retries).
    pub clock: Clock,
    pub metrics: crate::metrics::Metrics,
    pub profiles: Vec<Profile>,
    /// This process's issuance lease owner and worker doorbell.
    pub issuance: issuance::Queue,
    /// Issuers by the name profiles use (`builtin` and issuer plugins).
    pub issuers: std::collections::BTreeMap<String, issuance::Issuer>,
    /// The plugin runtime, when plugins are configured (its epoch ticker enforces their CPU
    /// limits for as long as it lives).
    pub plugins: Option<crate::plugins::PluginRuntime>,
    /// Challenge validator plugins by the challenge type they decide (`validation.challenge_plugins`).
    pub challenge_plugins: std::collections::BTreeMap<String, crate::plugins::ValidatorPlugin>,
    /// The newOrder policy plugin (`validation.order_policy`).
    pub order_policy: Option<crate::plugins::ValidatorPlugin>,
    /// Notifier plugins; every certificate event goes to each (`crate::authority::notify`).
    pub notifiers: Vec<crate::plugins::NotifierPlugin>,
    /// Deployment targets with their deployer plugins (`crate::authority::deploy`).
    pub targets: Vec<deploy::Target>,
    /// This process's deployment worker doorbell and the generated keys it holds.
    pub deployments: deploy::Queue,
    /// Seals managed certificates' private keys at rest ([`managed::KEY_PURPOSE`]).
    pub managed_key: Arc<ring::aead::LessSafeKey>,
    /// Hot reloads done and failed since start.
    pub plugin_reloads: Arc<crate::plugins::watcher::ReloadStats>,
    /// Every configured plugin as loaded (the handles follow hot reloads), for status.
    pub loaded_plugins: Vec<crate::plugins::watcher::Watched>,
    /// Signs the admin console's anti-forgery form tokens (derived from the CA key secret, so
    /// every replica of one PKI accepts the others' forms).
    pub form_key: ring::hmac::Key,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("{}{ACME_PREFIX}{path}", self.base_url)
    }

    pub fn directory_url(&self) -> String {
        self.url("/directory")
    }

    pub fn account_url(&self, id: &str) -> String {
        self.url(&format!("/acct/{id}"))
    }

    pub fn order_url(&self, id: &str) -> String {
        self.url(&format!("/order/{id}"))
    }

    pub fn authz_url(&self, id: &str) -> String {
        self.url(&format!("/authz/{id}"))
    }

    pub fn challenge_url(&self, id: &str) -> String {
        self.url(&format!("/chall/{id}"))
    }

    pub fn cert_url(&self, id: &str) -> String {
        self.url(&format!("/cert/{id}"))
    }

    /// The time decisions are made at, as Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    pub fn issuer(&self, name: &str) -> Option<issuance::Issuer> {
        self.issuers.get(name).cloned()
    }

    /// Runs blocking store work off the async executor. Changes are audited as the
    /// gateway's own ([`crate::store::audit::SYSTEM_ACTOR`]); see [`Gateway::db_as`].
    pub async fn db<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        Self::run_db(self.store.clone(), f).await
    }

    /// A read on the path of every ACME request (an account, an order, an authorization by
    /// key). On SQLite it runs on the calling thread: such a read takes microseconds on a
    /// local file, less than handing it to the blocking pool and back, which cost two thread
    /// wake-ups per read. On PostgreSQL, a network round trip, it goes the way of
    /// [`Gateway::db`]. Never for writes (they wait for a disk flush) or scans.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        if self.store.backend() == "sqlite" {
            f(&self.store)
        } else {
            self.db(f).await
        }
    }

    /// A write on the path of an ACME request, audited as `actor`: on SQLite it runs on the
    /// writer thread inside its next group commit ([`Store::call_batched`]), which spares the
    /// hand-off to the blocking pool and back; on PostgreSQL as [`Gateway::db_as`]. Only for
    /// store calls that write and return (no scans, nothing slow): every other write waits
    /// while it runs.
    pub async fn write_as<T, F>(&self, actor: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.store.acting_as(actor).call_batched(f).await
    }

    /// [`Gateway::write_as`] audited as the gateway's own.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.store.call_batched(f).await
    }

    /// [`Gateway::db`] with the changes attributed to `actor` in the audit log.
    pub async fn db_as<T, F>(&self, actor: &str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        Self::run_db(self.store.acting_as(actor), f).await
    }

    async fn run_db<T, F>(store: Store, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        store.call(f).await
    }
}
