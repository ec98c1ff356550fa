//! Persistent state in diesel: SQLite (bundled, WAL, pooled) by default, PostgreSQL when the
//! URL says `postgres://`. One schema and one set of migrations (`migrations/`) serve both.
//!
//! Every method is blocking: callers on the async side wrap them in `spawn_blocking`. Every
//! method that changes state commits before it returns, so a client is only told of what is
//! durable.
//!
//! SKELETON: the public API below is the contract the rest of the gateway codes against.

pub mod model;

pub use model::*;

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was hit (e.g. a key already bound to another account).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    _private: (),
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`:
    /// `sqlite://PATH`, a bare path, or `postgres://...`.
    pub fn open(_url: &str) -> Result<Store, StoreError> {
        unimplemented!("store")
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        unimplemented!("store")
    }

    /// Runs a trivial query; for readiness checks.
    pub fn ping(&self) -> Result<(), StoreError> {
        unimplemented!("store")
    }

    // --- accounts ---
    /// Inserts the account; if `eab_kid` is set, binds that unbound, unrevoked EAB key in the
    /// same transaction (Conflict if it is bound already). Conflict on a duplicate thumbprint.
    pub fn insert_account(&self, _account: &Account) -> Result<(), StoreError> {
        unimplemented!("store")
    }
    pub fn account(&self, _id: &str) -> Result<Account, StoreError> {
        unimplemented!("store")
    }
    pub fn account_by_thumbprint(&self, _thumbprint: &str) -> Result<Account, StoreError> {
        unimplemented!("store")
    }
    /// Updates contact and status.
    pub fn update_account(
        &self,
        _id: &str,
        _contact: &str,
        _status: &str,
    ) -> Result<(), StoreError> {
        unimplemented!("store")
    }
    /// Replaces the account key (RFC 8555 §7.3.5); Conflict if another account has it.
    pub fn update_account_key(
        &self,
        _id: &str,
        _jwk: &str,
        _thumbprint: &str,
    ) -> Result<(), StoreError> {
        unimplemented!("store")
    }

    // --- orders, authorizations, challenges ---
    /// Inserts an order with its authorizations and their challenges in one transaction.
    pub fn insert_order(
        &self,
        _order: &Order,
        _authzs: &[Authorization],
        _challenges: &[Challenge],
    ) -> Result<(), StoreError> {
        unimplemented!("store")
    }
    pub fn order(&self, _id: &str) -> Result<Order, StoreError> {
        unimplemented!("store")
    }
    /// Orders of an account, oldest first, with id greater than `after` (cursor pagination).
    pub fn orders_for_account(
        &self,
        _account_id: &str,
        _after: Option<&str>,
        _limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        unimplemented!("store")
    }
    /// Sets status (and error) only if the current status is `from`; returns whether it did.
    pub fn transition_order(
        &self,
        _id: &str,
        _from: &str,
        _to: &str,
        _error: Option<&str>,
    ) -> Result<bool, StoreError> {
        unimplemented!("store")
    }
    pub fn authorization(&self, _id: &str) -> Result<Authorization, StoreError> {
        unimplemented!("store")
    }
    pub fn authorizations_for_order(
        &self,
        _order_id: &str,
    ) -> Result<Vec<Authorization>, StoreError> {
        unimplemented!("store")
    }
    /// Sets status only if the current status is `from`; returns whether it did.
    pub fn transition_authorization(
        &self,
        _id: &str,
        _from: &str,
        _to: &str,
    ) -> Result<bool, StoreError> {
        unimplemented!("store")
    }
    pub fn challenge(&self, _id: &str) -> Result<Challenge, StoreError> {
        unimplemented!("store")
    }
    pub fn challenges_for_authorization(
        &self,
        _authz_id: &str,
    ) -> Result<Vec<Challenge>, StoreError> {
        unimplemented!("store")
    }
    /// Moves a challenge from `from` to `to` only if it is in `from`; returns whether it did.
    pub fn transition_challenge(
        &self,
        _id: &str,
        _from: &str,
        _to: &str,
    ) -> Result<bool, StoreError> {
        unimplemented!("store")
    }
    /// Records a validation outcome in one transaction: the challenge becomes valid/invalid
    /// (with `validated`/`error`), its authorization becomes valid/invalid, and when invalid
    /// the authorization's other pending challenges become invalid too (RFC 8555 §7.1.6).
    pub fn record_validation(
        &self,
        _challenge_id: &str,
        _valid: bool,
        _validated: Option<i64>,
        _error: Option<&str>,
    ) -> Result<(), StoreError> {
        unimplemented!("store")
    }

    // --- certificates ---
    /// Inserts the certificate and moves its order from processing to valid with
    /// `certificate_id` set, in one transaction.
    pub fn insert_certificate(&self, _cert: &Certificate) -> Result<(), StoreError> {
        unimplemented!("store")
    }
    pub fn certificate(&self, _id: &str) -> Result<Certificate, StoreError> {
        unimplemented!("store")
    }
    pub fn certificate_by_serial(&self, _serial: &str) -> Result<Certificate, StoreError> {
        unimplemented!("store")
    }
    /// Marks a valid certificate revoked; returns false if it was revoked already.
    pub fn revoke_certificate(
        &self,
        _serial: &str,
        _reason: i32,
        _at: i64,
    ) -> Result<bool, StoreError> {
        unimplemented!("store")
    }
    /// Whether the account holds a valid authorization for the identifier now (for revocation
    /// by an account that did not order the certificate, RFC 8555 §7.6).
    pub fn has_valid_authorization(
        &self,
        _account_id: &str,
        _identifier_type: &str,
        _value: &str,
        _now: i64,
    ) -> Result<bool, StoreError> {
        unimplemented!("store")
    }

    // --- EAB keys ---
    pub fn insert_eab_key(&self, _key: &EabKey) -> Result<(), StoreError> {
        unimplemented!("store")
    }
    pub fn eab_key(&self, _kid: &str) -> Result<EabKey, StoreError> {
        unimplemented!("store")
    }
    pub fn list_eab_keys(&self) -> Result<Vec<EabKey>, StoreError> {
        unimplemented!("store")
    }
    pub fn revoke_eab_key(&self, _kid: &str) -> Result<bool, StoreError> {
        unimplemented!("store")
    }
}
