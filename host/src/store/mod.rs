//! Persistent state in diesel: SQLite (bundled, WAL, pooled) by default, PostgreSQL when the
//! URL says `postgres://`. One schema and one set of migrations (`migrations/`) serve both,
//! through one `MultiConnection`, so every query is written once.
//!
//! Every method is blocking: callers on the async side go through [`Store::call`], or
//! [`Store::call_batched`] for a request's writes (on SQLite run on the writer thread itself);
//! only SQLite's reads on the request path run in place (`Gateway::read`). Every method that
//! changes state commits before it returns, so a client is only told of what is
//! durable (SQLite runs with `synchronous=FULL`). On SQLite all writes go through one writer
//! thread that commits concurrent writes together (`writer`); PostgreSQL takes them directly.

mod admin;
pub mod audit;
mod audit_archive;
mod ca_pin;
mod conn;
mod deployment;
mod issuance;
mod managed;
pub mod model;
mod nonces;
mod plugin_state;
mod plugin_switches;
mod renewal;
mod retention;
mod schema;
mod status;
mod validation;
mod workers;
mod writer;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::acme::{AccountStatus, AuthzStatus, CertificateStatus, ChallengeStatus, OrderStatus};

pub use admin::{CertificateFilter, OrderFilter, Overview, Page, PageRequest};
pub use audit::{AuditEntry, AuditFilter, Auditor, Event, Verdict};
pub use audit_archive::Archived;
pub use ca_pin::CaPin;
pub use conn::{redacted_url, DatabaseUrl};
pub use model::*;
pub use plugin_switches::PluginSwitches;
pub use renewal::{
    RenewNow, RenewNowFilter, RenewalMarks, RenewalState, RENEW_ADMIN, RENEW_ISSUER_RETIRED,
    RENEW_KEY_COMPROMISE,
};
pub use retention::{DatabaseSize, Pruned, BATCH as PRUNE_BATCH, RETENTION_TASK};
use schema::{
    accounts, authorizations, certificates, challenges, deployment_jobs, eab_keys, issuance_jobs,
    orders,
};

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
    /// Writing or reading the audit log's archive files.
    #[error("audit archive: {0}")]
    Archive(String),
    /// A status change RFC 8555 §7.1.6 does not allow: a bug in the caller, refused before it
    /// reaches the database.
    #[error("{0}")]
    Transition(String),
    /// An audit entry waiting to be linked into the chain (PostgreSQL) does not match its
    /// seal: it was altered, or it was written under another audit key.
    #[error("{0}")]
    AuditAltered(String),
    /// The database URL opens with a scheme the store has no backend for.
    #[error(
        "the scheme {scheme:?} is not supported; expected {}",
        conn::SUPPORTED_DATABASE_URLS
    )]
    UnsupportedUrl { scheme: String },
}

impl StoreError {
    /// Why the database cannot take writes, when that is what this error says: a full disk or
    /// a read-only database. Clients and operators are told that cause instead of "could not
    /// reach", which would send them looking at the network.
    pub fn cannot_write(&self) -> Option<&'static str> {
        let text = self.to_string().to_ascii_lowercase();
        if ["disk is full", "no space left", "could not extend file"]
            .iter()
            .any(|m| text.contains(m))
        {
            Some("disk full")
        } else if ["read-only", "readonly"].iter().any(|m| text.contains(m)) {
            Some("read-only")
        } else {
            None
        }
    }

    /// What a client is told when this error stops its request.
    pub fn client_message(&self) -> String {
        match self.cannot_write() {
            Some(why) => format!("the gateway's database cannot write ({why}); try again later"),
            None => "the gateway could not reach its database; try again".to_string(),
        }
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(info.message().to_string())
            }
            other => {
                // diesel's message for a row that fails to load names the field only; the
                // reason (which value, why) is in its sources.
                let mut text = other.to_string();
                let mut source = std::error::Error::source(&other);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                StoreError::Database(text)
            }
        }
    }
}

/// The audit event of a certificate's issuance.
fn issue_event(cert: &Certificate) -> Event {
    Event::new(
        "certificate.issue",
        format!("certificate/{}", cert.serial),
        serde_json::json!({
            "origin": cert.origin,
            "issuer": cert.issuer,
            "order": cert.order_id,
            "account": cert.account_id,
            "subject": cert.subject,
            "identifiers": json_text(&cert.identifiers),
            "not_after": cert.not_after,
        }),
    )
}

/// Inserts `cert` with the deployments owed for it and, when it is an order's, makes that order
/// `valid` with it: a compare-and-set from `from`, so an order never gets two certificates
/// (Conflict when the order is no longer `from`). Inside the caller's transaction.
fn store_certificate(
    c: &mut conn::DbConnection,
    cert: &Certificate,
    deployments: &[DeploymentJob],
    from: OrderStatus,
) -> Result<()> {
    diesel::insert_into(certificates::table)
        .values(cert)
        .execute(c)?;
    // One by one: a multi-row insert is not offered on the SQLite side of the multi-backend
    // connection, and a certificate is owed to a handful of targets.
    for job in deployments {
        diesel::insert_into(deployment_jobs::table)
            .values(job)
            .execute(c)?;
    }
    let Some(order_id) = &cert.order_id else {
        return Ok(());
    };
    let moved = diesel::update(orders::table.find(order_id).filter(orders::status.eq(from)))
        .set((
            orders::status.eq(OrderStatus::Valid),
            orders::certificate_id.eq(&cert.id),
            orders::not_before.eq(cert.not_before),
            orders::not_after.eq(cert.not_after),
        ))
        .execute(c)?;
    if moved == 0 {
        return Err(StoreError::Conflict(format!(
            "order {order_id} is not {from}"
        )));
    }
    Ok(())
}

/// `Ok` when `may` says the move of `what` from `from` to `to` is one RFC 8555 §7.1.6 allows.
fn allowed(
    what: &str,
    from: impl std::fmt::Display,
    to: impl std::fmt::Display,
    may: bool,
) -> Result<()> {
    if may {
        Ok(())
    } else {
        Err(StoreError::Transition(format!(
            "{what} cannot go from {from} to {to} (RFC 8555 §7.1.6)"
        )))
    }
}

/// RFC 5280 §5.3.1 CRLReason keyCompromise.
const KEY_COMPROMISE: i32 = 1;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: conn::Pool,
    backend: &'static str,
    writer: Option<std::sync::Arc<writer::Writer>>,
    /// The threads calls from the async side run on; `None` on SQLite (see [`Store::call`]).
    workers: Option<std::sync::Arc<workers::Workers>>,
    /// The SQLite file, for its size on disk; `None` on PostgreSQL.
    sqlite_path: Option<String>,
    /// Signs the audit entries of changes; without one (tools that only read) none are written.
    auditor: Option<Auditor>,
    /// Statements and commits of all its connections (`acmegate bench`).
    counts: std::sync::Arc<conn::QueryCounts>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only the backend is shown.
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Stored JSON text as a value for audit details.
fn json_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::from(text))
}

/// The audit event of a status change of `kind/id`.
fn status_event(kind: &str, id: &str, from: &str, to: &str, error: Option<&str>) -> Event {
    let action = match kind {
        "order" => "order.status",
        _ => "authorization.status",
    };
    Event::new(
        action,
        format!("{kind}/{id}"),
        serde_json::json!({ "from": from, "to": to, "error": error.map(json_text) }),
    )
}

/// Makes the pending order `order_id` ready when, at `at`, it has not expired and every one
/// of its authorizations is valid and unexpired (RFC 8555 §7.1.6, as
/// `acme::state::order_status` decides it): in the transaction that validates its last
/// authorization, so that the order's next request finds it ready instead of writing the
/// move in a transaction of its own. Returns whether it moved.
fn make_order_ready(c: &mut conn::DbConnection, order_id: &str, at: i64) -> Result<bool> {
    use diesel::dsl::{exists, not};
    let unready = authorizations::table
        .filter(authorizations::order_id.eq(order_id))
        .filter(
            authorizations::status
                .ne(AuthzStatus::Valid)
                .or(authorizations::expires.le(at)),
        );
    let moved = diesel::update(
        orders::table
            .find(order_id)
            .filter(orders::status.eq(OrderStatus::Pending))
            .filter(orders::expires.gt(at))
            .filter(not(exists(unready))),
    )
    .set(orders::status.eq(OrderStatus::Ready))
    .execute(c)?;
    Ok(moved == 1)
}

/// The rows of a parent left-joined with its children (the parent repeated on each) as the
/// parent and its children; `NotFound` when there is no parent.
fn gather<P, C>(rows: Vec<(P, Option<C>)>) -> Result<(P, Vec<C>)> {
    let mut rows = rows.into_iter();
    let (parent, first) = rows.next().ok_or(StoreError::NotFound)?;
    let children = first
        .into_iter()
        .chain(rows.filter_map(|(_, c)| c))
        .collect();
    Ok((parent, children))
}

/// What [`Store::record_validation`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Another process decided the challenge first: nothing changed.
    AlreadyDecided,
    /// The outcome is stored; `order_ready` when it made the challenge's order ready too.
    Decided { order_ready: bool },
}

/// Turns "no row changed" into `NotFound` for updates that must hit a row.
fn one_row(changed: usize) -> Result<()> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`:
    /// `sqlite://PATH`, a bare path, or `postgres://...`.
    pub fn open(url: &str) -> Result<Store> {
        let counts = std::sync::Arc::<conn::QueryCounts>::default();
        let (pool, backend, sqlite_path) = conn::open(url, &counts)?;
        let mut store = Store {
            pool,
            backend,
            writer: None,
            workers: None,
            sqlite_path: sqlite_path.clone(),
            auditor: None,
            counts: counts.clone(),
        };
        conn::migrate(&mut *store.conn()?)?;
        if let Some(path) = sqlite_path {
            store.writer = Some(std::sync::Arc::new(writer::Writer::start(
                conn::sqlite_writer(&path, &counts)?,
            )?));
        } else {
            store.workers = Some(std::sync::Arc::new(workers::Workers::start(
                conn::PG_POOL_SIZE,
            )?));
        }
        Ok(store)
    }

    /// Runs `f`, blocking store work, off the async executor and answers its result: on
    /// PostgreSQL on the store's own threads, one per pooled connection (`workers`), on SQLite
    /// on tokio's blocking pool. The one way the async side reaches the store.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        match &self.workers {
            Some(workers) => workers.run(move || f(&store)).await,
            None => tokio::task::spawn_blocking(move || f(&store))
                .await
                .map_err(|e| StoreError::Database(format!("store task failed: {e}")))?,
        }
    }

    /// [`Store::call`] for a short call that writes, on the path of a request: on SQLite it runs
    /// on the writer thread inside its next group commit, so the write reaches the writer
    /// without a blocking-pool thread waiting in between, and answers once that batch has
    /// committed; on PostgreSQL as [`Store::call`]. Each write of `f` runs in a savepoint of
    /// the batch and is not committed until `f` has returned: a read of `f` after its own write
    /// (on a pooled connection) does not see that write yet. Never for scans or anything slow:
    /// every other write waits while `f` runs.
    pub async fn call_batched<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.writer {
            Some(writer) => {
                let store = self.clone();
                writer.run(move || f(&store)).await
            }
            None => self.call(f).await,
        }
    }

    /// (statements, commits) this store's connections have sent so far, `BEGIN` and `COMMIT`
    /// counted as statements.
    pub fn query_counts(&self) -> (u64, u64) {
        self.counts.read()
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    fn conn(&self) -> Result<conn::Pooled> {
        self.pool.get().map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// Runs a write in a transaction that has committed when this returns: on SQLite in the
    /// writer thread's next batch, on PostgreSQL on a pooled connection.
    fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut conn::DbConnection) -> Result<T> + Send + 'static,
    {
        self.write_chained(move |c, _| f(c))
    }

    /// [`Store::write`] for a write that appends to the audit chain: `f` also gets the chain's
    /// end as its transaction sees it ([`audit::Tail`]; PostgreSQL's entries wait to be linked
    /// and leave it untouched).
    fn write_chained<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut conn::DbConnection, &mut audit::Tail) -> Result<T> + Send + 'static,
    {
        match &self.writer {
            Some(w) => w.submit(f),
            None => {
                let mut pooled = self.conn()?;
                let conn: &mut conn::DbConnection = &mut pooled;
                conn.transaction(|c| {
                    let mut tail = audit::Tail::default();
                    let out = f(c, &mut tail)?;
                    tail.save(c)?;
                    Ok(out)
                })
            }
        }
    }

    /// Leases each of `due` (rows read as due) with `cas`, a compare-and-set on the lease the
    /// row was read with that answers how many rows it changed, and returns the rows won as
    /// `claimed` makes them. Of several processes claiming at once exactly one gets each row:
    /// the claim of every lease-based queue (issuance, validation, deployment, managed
    /// certificates).
    fn claim_each<T, W>(
        &self,
        due: Vec<T>,
        cas: impl Fn(&T) -> W,
        claimed: impl Fn(T) -> T,
    ) -> Result<Vec<T>>
    where
        W: FnOnce(&mut conn::DbConnection) -> Result<usize> + Send + 'static,
    {
        let mut won = Vec::with_capacity(due.len());
        for row in due {
            if self.write(cas(&row))? == 1 {
                won.push(claimed(row));
            }
        }
        Ok(won)
    }

    /// Runs a trivial query; for readiness checks.
    pub fn ping(&self) -> Result<()> {
        diesel::sql_query("SELECT 1").execute(&mut *self.conn()?)?;
        Ok(())
    }

    /// Writes one row and commits, as `owner` (one row per process): for readiness checks
    /// that must fail when the database reads but cannot write (disk full, read-only, a
    /// PostgreSQL standby).
    pub fn probe_write(&self, owner: &str, at: i64) -> Result<()> {
        use schema::write_probe;
        let owner = owner.to_owned();
        self.write(move |c| {
            diesel::delete(write_probe::table.find(&owner)).execute(c)?;
            diesel::insert_into(write_probe::table)
                .values((
                    write_probe::owner.eq(&owner),
                    write_probe::checked_at.eq(at),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    // --- accounts ---

    /// Inserts the account; if `eab_kid` is set, binds that unbound, unrevoked EAB key in the
    /// same transaction (Conflict if it is bound already). Conflict on a duplicate thumbprint.
    pub fn insert_account(&self, account: &Account) -> Result<()> {
        let account = account.clone();
        let event = Event::new(
            "account.create",
            format!("account/{}", account.id),
            serde_json::json!({
                "contact": json_text(&account.contact),
                "eab_kid": account.eab_kid,
                "jwk_thumbprint": account.jwk_thumbprint,
            }),
        );
        self.write_audited(event, move |c| {
            if let Some(kid) = &account.eab_kid {
                let bound = diesel::update(
                    eab_keys::table
                        .filter(eab_keys::kid.eq(kid))
                        .filter(eab_keys::account_id.is_null())
                        .filter(eab_keys::revoked.eq(false)),
                )
                .set(eab_keys::account_id.eq(&account.id))
                .execute(c)?;
                if bound == 0 {
                    return Err(StoreError::Conflict(format!(
                        "EAB key {kid} is bound, revoked or unknown"
                    )));
                }
            }
            diesel::insert_into(accounts::table)
                .values(&account)
                .execute(c)?;
            Ok(())
        })
    }

    pub fn account(&self, id: &str) -> Result<Account> {
        Ok(accounts::table
            .find(id)
            .select(Account::as_select())
            .first(&mut *self.conn()?)?)
    }

    pub fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Account> {
        Ok(accounts::table
            .filter(accounts::jwk_thumbprint.eq(thumbprint))
            .select(Account::as_select())
            .first(&mut *self.conn()?)?)
    }

    /// Updates contact and status.
    pub fn update_account(&self, id: &str, contact: &str, status: AccountStatus) -> Result<()> {
        let (id, contact) = (id.to_owned(), contact.to_owned());
        let event = Event::new(
            "account.update",
            format!("account/{id}"),
            serde_json::json!({ "contact": json_text(&contact), "status": status.as_str() }),
        );
        self.write_audited(event, move |c| {
            one_row(
                diesel::update(accounts::table.find(&id))
                    .set((accounts::contact.eq(&contact), accounts::status.eq(status)))
                    .execute(c)?,
            )
        })
    }

    /// Replaces the account key (RFC 8555 §7.3.5); Conflict if another account has it.
    pub fn update_account_key(&self, id: &str, jwk: &str, thumbprint: &str) -> Result<()> {
        let (id, jwk, thumbprint) = (id.to_owned(), jwk.to_owned(), thumbprint.to_owned());
        let event = Event::new(
            "account.key_change",
            format!("account/{id}"),
            serde_json::json!({ "jwk_thumbprint": thumbprint }),
        );
        self.write_audited(event, move |c| {
            one_row(
                diesel::update(accounts::table.find(&id))
                    .set((
                        accounts::jwk.eq(&jwk),
                        accounts::jwk_thumbprint.eq(&thumbprint),
                    ))
                    .execute(c)?,
            )
        })
    }

    // --- orders, authorizations, challenges ---

    /// Inserts an order with its authorizations and their challenges in one transaction.
    pub fn insert_order(
        &self,
        order: &Order,
        authzs: &[Authorization],
        challenges: &[Challenge],
    ) -> Result<()> {
        let (order, authzs, challenges) = (order.clone(), authzs.to_vec(), challenges.to_vec());
        let event = renewal::order_event(&order, None);
        self.write_audited(event, move |c| {
            renewal::insert_order_rows(c, &order, &authzs, &challenges)
        })
    }

    pub fn order(&self, id: &str) -> Result<Order> {
        Ok(orders::table
            .find(id)
            .select(Order::as_select())
            .first(&mut *self.conn()?)?)
    }

    /// Orders of an account, oldest first, with id greater than `after` (cursor pagination).
    pub fn orders_for_account(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Order>> {
        let mut q = orders::table
            .filter(orders::account_id.eq(account_id))
            .select(Order::as_select())
            .order(orders::id.asc())
            .limit(limit)
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(orders::id.gt(after));
        }
        Ok(q.load(&mut *self.conn()?)?)
    }

    /// Sets status (and error) only if the current status is `from`; returns whether it did.
    pub fn transition_order(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        error: Option<&str>,
    ) -> Result<bool> {
        allowed(
            "an order",
            from,
            to,
            crate::acme::state::order_may_become(from, to),
        )?;
        let (id, error) = (id.to_owned(), error.map(str::to_owned));
        self.write_maybe_audited(move |c| {
            let changed = diesel::update(orders::table.find(&id).filter(orders::status.eq(from)))
                .set((orders::status.eq(to), orders::error.eq(&error)))
                .execute(c)?;
            let event = (changed == 1)
                .then(|| status_event("order", &id, from.as_str(), to.as_str(), error.as_deref()));
            Ok((changed == 1, event))
        })
    }

    pub fn authorization(&self, id: &str) -> Result<Authorization> {
        Ok(authorizations::table
            .find(id)
            .select(Authorization::as_select())
            .first(&mut *self.conn()?)?)
    }

    /// An order with its authorizations (oldest first) in one statement: every ACME request
    /// on an order reads both, and on PostgreSQL each statement is a round trip.
    pub fn order_with_authorizations(&self, id: &str) -> Result<(Order, Vec<Authorization>)> {
        let rows: Vec<(Order, Option<Authorization>)> = orders::table
            .find(id)
            .left_join(authorizations::table.on(authorizations::order_id.eq(orders::id)))
            .select((Order::as_select(), Option::<Authorization>::as_select()))
            .order(authorizations::id.asc())
            .load(&mut *self.conn()?)?;
        gather(rows)
    }

    pub fn authorizations_for_order(&self, order_id: &str) -> Result<Vec<Authorization>> {
        Ok(authorizations::table
            .filter(authorizations::order_id.eq(order_id))
            .select(Authorization::as_select())
            .order(authorizations::id.asc())
            .load(&mut *self.conn()?)?)
    }

    /// Sets status only if the current status is `from`; returns whether it did.
    pub fn transition_authorization(
        &self,
        id: &str,
        from: AuthzStatus,
        to: AuthzStatus,
    ) -> Result<bool> {
        let may = crate::acme::state::authz_may_become(from, to);
        allowed("an authorization", from, to, may)?;
        let id = id.to_owned();
        self.write_maybe_audited(move |c| {
            let changed = diesel::update(
                authorizations::table
                    .find(&id)
                    .filter(authorizations::status.eq(from)),
            )
            .set(authorizations::status.eq(to))
            .execute(c)?;
            let event = (changed == 1)
                .then(|| status_event("authorization", &id, from.as_str(), to.as_str(), None));
            Ok((changed == 1, event))
        })
    }

    pub fn challenge(&self, id: &str) -> Result<Challenge> {
        Ok(challenges::table
            .find(id)
            .select(Challenge::as_select())
            .first(&mut *self.conn()?)?)
    }

    /// An authorization with its challenges (oldest first) in one statement, like
    /// [`Store::order_with_authorizations`].
    pub fn authorization_with_challenges(
        &self,
        id: &str,
    ) -> Result<(Authorization, Vec<Challenge>)> {
        let rows: Vec<(Authorization, Option<Challenge>)> = authorizations::table
            .find(id)
            .left_join(challenges::table.on(challenges::authz_id.eq(authorizations::id)))
            .select((Authorization::as_select(), Option::<Challenge>::as_select()))
            .order(challenges::id.asc())
            .load(&mut *self.conn()?)?;
        gather(rows)
    }

    /// A challenge with its authorization, in one statement.
    pub fn challenge_with_authorization(&self, id: &str) -> Result<(Challenge, Authorization)> {
        Ok(challenges::table
            .find(id)
            .inner_join(authorizations::table.on(authorizations::id.eq(challenges::authz_id)))
            .select((Challenge::as_select(), Authorization::as_select()))
            .first(&mut *self.conn()?)?)
    }

    pub fn challenges_for_authorization(&self, authz_id: &str) -> Result<Vec<Challenge>> {
        Ok(challenges::table
            .filter(challenges::authz_id.eq(authz_id))
            .select(Challenge::as_select())
            .order(challenges::id.asc())
            .load(&mut *self.conn()?)?)
    }

    /// Moves a challenge from `from` to `to` only if it is in `from`; returns whether it did.
    pub fn transition_challenge(
        &self,
        id: &str,
        from: ChallengeStatus,
        to: ChallengeStatus,
    ) -> Result<bool> {
        let may = crate::acme::state::challenge_may_become(from, to);
        allowed("a challenge", from, to, may)?;
        let id = id.to_owned();
        self.write(move |c| {
            let changed = diesel::update(
                challenges::table
                    .find(&id)
                    .filter(challenges::status.eq(from)),
            )
            .set(challenges::status.eq(to))
            .execute(c)?;
            Ok(changed == 1)
        })
    }

    /// Records a validation outcome in one transaction: the challenge becomes valid/invalid
    /// (with `validated`/`error`), its validation job is deleted, its authorization becomes
    /// valid/invalid, and when invalid the authorization's other pending challenges become
    /// invalid too (RFC 8555 §7.1.6); when valid at `validated` and the order's last
    /// authorization, the order becomes ready. Changes nothing when the challenge was already
    /// decided (another process recorded first).
    pub fn record_validation(
        &self,
        challenge_id: &str,
        valid: bool,
        validated: Option<i64>,
        error: Option<&str>,
    ) -> Result<Recorded> {
        let (status, authz_status) = if valid {
            (ChallengeStatus::Valid, AuthzStatus::Valid)
        } else {
            (ChallengeStatus::Invalid, AuthzStatus::Invalid)
        };
        let (challenge_id, error) = (challenge_id.to_owned(), error.map(str::to_owned));
        self.write_maybe_audited(move |c| {
            let authz_id: Option<String> = diesel::update(
                challenges::table
                    .find(&challenge_id)
                    .filter(challenges::status.eq_any([ChallengeStatus::Pending, ChallengeStatus::Processing])),
            )
            .set((
                challenges::status.eq(status),
                challenges::validated.eq(validated),
                challenges::error.eq(&error),
            ))
            .returning(challenges::authz_id)
            .get_result(c)
            .optional()?;
            diesel::delete(schema::validation_jobs::table.find(&challenge_id)).execute(c)?;
            let Some(authz_id) = authz_id else {
                // Decided already, or no such challenge (only then is the extra read paid).
                let exists: bool = diesel::select(diesel::dsl::exists(
                    challenges::table.find(&challenge_id),
                ))
                .get_result(c)?;
                return if exists {
                    Ok((Recorded::AlreadyDecided, Vec::new()))
                } else {
                    Err(StoreError::NotFound)
                };
            };
            // Only a pending authorization is decided by its challenge (§7.1.6).
            let order_id: Option<String> = diesel::update(
                authorizations::table
                    .find(&authz_id)
                    .filter(authorizations::status.eq(AuthzStatus::Pending)),
            )
            .set(authorizations::status.eq(authz_status))
            .returning(authorizations::order_id)
            .get_result(c)
            .optional()?;
            let mut events = vec![Event::new(
                "challenge.validated",
                format!("challenge/{challenge_id}"),
                serde_json::json!({ "status": status.as_str(), "error": error.as_deref().map(json_text) }),
            )];
            let mut order_ready = false;
            if let (Some(order_id), Some(at)) = (&order_id, validated.filter(|_| valid)) {
                order_ready = make_order_ready(c, order_id, at)?;
                if order_ready {
                    events.push(status_event(
                        "order",
                        order_id,
                        OrderStatus::Pending.as_str(),
                        OrderStatus::Ready.as_str(),
                        None,
                    ));
                }
            }
            if !valid {
                diesel::update(
                    challenges::table
                        .filter(challenges::authz_id.eq(&authz_id))
                        .filter(challenges::status.eq_any([ChallengeStatus::Pending, ChallengeStatus::Processing])),
                )
                .set(challenges::status.eq(ChallengeStatus::Invalid))
                .execute(c)?;
            }
            Ok((Recorded::Decided { order_ready }, events))
        })
    }

    // --- certificates ---

    /// Stores `cert` with the deployments it is owed (see `deployment_jobs`) and, for an
    /// ACME certificate, makes its order `valid` and drops the order's issuance job, in one
    /// audited transaction. Conflict when the order is no longer `processing`.
    pub fn insert_certificate(
        &self,
        cert: &Certificate,
        deployments: &[DeploymentJob],
    ) -> Result<()> {
        let (cert, deployments) = (cert.clone(), deployments.to_vec());
        self.write_audited(issue_event(&cert), move |c| {
            store_certificate(c, &cert, &deployments, OrderStatus::Processing)?;
            if let Some(order_id) = &cert.order_id {
                diesel::delete(issuance_jobs::table.find(order_id)).execute(c)?;
            }
            Ok(())
        })
    }

    pub fn certificate(&self, id: &str) -> Result<Certificate> {
        Ok(certificates::table
            .find(id)
            .select(Certificate::as_select())
            .first(&mut *self.conn()?)?)
    }

    pub fn certificate_by_serial(&self, serial: &str) -> Result<Certificate> {
        Ok(certificates::table
            .filter(certificates::serial.eq(serial))
            .select(Certificate::as_select())
            .first(&mut *self.conn()?)?)
    }

    /// Every certificate stored for an order (one at most, unless something is badly wrong).
    pub fn certificates_of_order(&self, order_id: &str) -> Result<Vec<Certificate>> {
        Ok(certificates::table
            .filter(certificates::order_id.eq(order_id))
            .select(Certificate::as_select())
            .load(&mut *self.conn()?)?)
    }

    /// Marks a valid certificate revoked; returns false if it was revoked already. A revocation
    /// for keyCompromise also moves its renewal window to `at`.
    pub fn revoke_certificate(&self, serial: &str, reason: i32, at: i64) -> Result<bool> {
        let serial = serial.to_owned();
        self.write_maybe_audited(move |c| {
            let changed = diesel::update(
                certificates::table
                    .filter(certificates::serial.eq(&serial))
                    .filter(certificates::status.eq(CertificateStatus::Valid)),
            )
            .set((
                certificates::status.eq(CertificateStatus::Revoked),
                certificates::revoked_at.eq(Some(at)),
                certificates::revocation_reason.eq(Some(reason)),
            ))
            .execute(c)?;
            if changed == 1 && reason == KEY_COMPROMISE {
                // RFC 9773 §4.2: its renewal window moves to now, so that its ARI-aware
                // clients replace it at once.
                diesel::update(certificates::table.filter(certificates::serial.eq(&serial)))
                    .set((
                        certificates::renew_now_at.eq(Some(at)),
                        certificates::renew_reason.eq(Some(RENEW_KEY_COMPROMISE)),
                    ))
                    .execute(c)?;
            }
            if changed == 1 {
                // A managed certificate that was revoked is replaced at once.
                Store::make_managed_due(c, std::slice::from_ref(&serial), at)?;
                use schema::revocation_generation as g;
                diesel::update(g::table.find(1))
                    .set(g::generation.eq(g::generation + 1))
                    .execute(c)?;
            }
            let event = (changed == 1).then(|| {
                Event::new(
                    "certificate.revoke",
                    format!("certificate/{serial}"),
                    serde_json::json!({ "reason": reason }),
                )
            });
            Ok((changed == 1, event))
        })
    }

    /// How many revocations this database has seen: another replica's revocation moves it.
    pub fn revocation_generation(&self) -> Result<i64> {
        use schema::revocation_generation as g;
        Ok(g::table
            .find(1)
            .select(g::generation)
            .first(&mut *self.conn()?)?)
    }

    /// Revoked certificates that have not expired by `now`, oldest revocation first: what a
    /// CRL must list (RFC 5280 §3.3 lets expired ones drop off).
    /// `issuer`'s revoked certificates that have not expired at `now` (what its CRL lists).
    pub fn revoked_certificates(&self, issuer: &str, now: i64) -> Result<Vec<Certificate>> {
        Ok(certificates::table
            .filter(certificates::issuer.eq(issuer))
            .filter(certificates::status.eq(CertificateStatus::Revoked))
            .filter(certificates::not_after.gt(now))
            .select(Certificate::as_select())
            .order(certificates::revoked_at.asc())
            .load(&mut *self.conn()?)?)
    }

    /// Whether the account holds a valid authorization for the identifier now (for revocation
    /// by an account that did not order the certificate, RFC 8555 §7.6).
    pub fn has_valid_authorization(
        &self,
        account_id: &str,
        identifier_type: &str,
        value: &str,
        now: i64,
    ) -> Result<bool> {
        let n: i64 = authorizations::table
            .filter(authorizations::account_id.eq(account_id))
            .filter(authorizations::identifier_type.eq(identifier_type))
            .filter(authorizations::identifier_value.eq(value))
            .filter(authorizations::status.eq(AuthzStatus::Valid))
            .filter(authorizations::expires.gt(now))
            .count()
            .get_result(&mut *self.conn()?)?;
        Ok(n > 0)
    }

    // --- EAB keys ---

    pub fn insert_eab_key(&self, key: &EabKey) -> Result<()> {
        let key = key.clone();
        let event = Event::new(
            "eab.create",
            format!("eab/{}", key.kid),
            serde_json::json!({ "label": key.label }),
        );
        self.write_audited(event, move |c| {
            diesel::insert_into(eab_keys::table)
                .values(&key)
                .execute(c)?;
            Ok(())
        })
    }

    pub fn eab_key(&self, kid: &str) -> Result<EabKey> {
        Ok(eab_keys::table
            .find(kid)
            .select(EabKey::as_select())
            .first(&mut *self.conn()?)?)
    }

    pub fn list_eab_keys(&self) -> Result<Vec<EabKey>> {
        Ok(eab_keys::table
            .select(EabKey::as_select())
            .order(eab_keys::created_at.asc())
            .load(&mut *self.conn()?)?)
    }

    pub fn revoke_eab_key(&self, kid: &str) -> Result<bool> {
        let kid = kid.to_owned();
        self.write_maybe_audited(move |c| {
            let changed = diesel::update(
                eab_keys::table
                    .find(&kid)
                    .filter(eab_keys::revoked.eq(false)),
            )
            .set(eab_keys::revoked.eq(true))
            .execute(c)?;
            let event = (changed == 1)
                .then(|| Event::new("eab.revoke", format!("eab/{kid}"), serde_json::json!({})));
            Ok((changed == 1, event))
        })
    }
}

#[cfg(test)]
mod tests;
