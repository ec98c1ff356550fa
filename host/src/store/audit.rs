//! The tamper-evident audit log: every state change appends an entry in the transaction that
//! makes the change. Entries are never updated or deleted.
//!
//! Each entry carries `mac = HMAC-SHA256(key, seq, at, actor, action, resource, details,
//! prev_mac)`, where `prev_mac` is the previous entry's mac: editing, inserting or deleting an
//! entry breaks the chain from there on. The key is derived from the CA key secret, which lives
//! outside the database, so whoever can write the database cannot mend the chain. The head row
//! (`audit_head`: last seq and mac, sealed with the same key) makes a cut-off tail visible too.
//!
//! How an entry joins the chain depends on the backend:
//! - SQLite: the single writer appends it to the chain in the transaction of its change; the
//!   head row is written once per group commit ([`Tail`]).
//! - PostgreSQL: the transaction of the change writes the entry to `audit_pending`, sealed on
//!   its own (`pending_mac`: nothing in it can be edited unseen while it waits), and it is
//!   linked into the chain soon after, with every other entry waiting, by
//!   [`Store::link_pending_audit`]: a loop of every gateway, and every read of the log before
//!   it reads. Appending to the chain in each transaction would hold the head's row lock until
//!   that transaction's commit reached the disk, so that concurrent requests queued behind one
//!   another's disk flushes (most of PostgreSQL's waits in `acmegate bench` at 8 clients);
//!   linked in batches, one flush covers many entries, and the changes commit side by side.
//!   The oldest waiting entry (by id, which begins with its creation time) is linked first.

use diesel::prelude::*;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::audit_archive::Checkpoint;
use super::conn::DbConnection;
use super::schema::{audit_head, audit_log, audit_pending};
use super::{Page, PageRequest, Result, Store, StoreError};

type Backend = <DbConnection as diesel::Connection>::Backend;

/// One entry as stored.
#[derive(
    Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize, Deserialize,
)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    /// 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// `acme:<account id>`, `admin:<subject> (serial <hex>)`, `cli`, `system`, `plugin:<name>`.
    pub actor: String,
    /// e.g. `account.create`, `order.status`, `certificate.revoke`.
    pub action: String,
    /// e.g. `account/<id>`, `certificate/<serial>`.
    pub resource: String,
    /// JSON object.
    pub details: String,
    pub prev_mac: String,
    pub mac: String,
}

/// An entry as the transaction of its change writes it, before it has a place in the chain:
/// on PostgreSQL the row that waits to be linked (with its id and seal), on SQLite linked at
/// once (neither is set).
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_pending)]
struct Pending {
    id: String,
    at: i64,
    actor: String,
    action: String,
    resource: String,
    details: String,
    mac: String,
}

/// Entries linked per transaction at most, so that one linking transaction stays short.
const LINK_BATCH: i64 = 1000;

#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = audit_head)]
struct Head {
    id: i32,
    seq: i64,
    mac: String,
    seal: String,
}

/// The key entries are signed with, and who the changes made through this handle are
/// attributed to.
#[derive(Clone)]
pub struct Auditor {
    pub(super) key: std::sync::Arc<hmac::Key>,
    actor: std::sync::Arc<str>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// Actor of changes nobody in particular asked for (issuance worker, start-up).
pub const SYSTEM_ACTOR: &str = "system";

/// What a change records; the store fills in sequence, time and macs.
#[derive(Debug)]
pub struct Event {
    pub action: &'static str,
    pub resource: String,
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(
        action: &'static str,
        resource: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            action,
            resource: resource.into(),
            details,
        }
    }
}

fn put(mac: &mut hmac::Context, field: &[u8]) {
    mac.update(&(field.len() as u64).to_be_bytes());
    mac.update(field);
}

pub(super) fn entry_mac(key: &hmac::Key, e: &AuditEntry) -> String {
    let mut mac = hmac::Context::with_key(key);
    mac.update(b"acmegate audit entry v1");
    mac.update(&e.seq.to_be_bytes());
    mac.update(&e.at.to_be_bytes());
    for field in [&e.actor, &e.action, &e.resource, &e.details, &e.prev_mac] {
        put(&mut mac, field.as_bytes());
    }
    crate::hex::lower(mac.sign().as_ref())
}

/// A seal over one place in the chain (its entry's number and mac), under `label`: the head
/// (`acmegate audit head v1`) and the archive checkpoint (`acmegate audit checkpoint v1`), so
/// that one cannot stand for the other.
pub(super) fn seal(key: &hmac::Key, label: &[u8], seq: i64, mac: &str) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(label);
    ctx.update(&seq.to_be_bytes());
    put(&mut ctx, mac.as_bytes());
    crate::hex::lower(ctx.sign().as_ref())
}

/// The id of an entry waiting to be linked, which sets its place in the chain: milliseconds
/// since the epoch, moved on by one at least from the previous id of this process (so that one
/// process's entries keep their order even within a millisecond or when the clock steps back),
/// then random bits that keep replicas' ids apart.
fn pending_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut next = 0;
    let _ = LAST.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
        next = (now << 12).max(last + 1);
        Some(next)
    });
    format!("{next:016x}{:016x}", rand::random::<u64>())
}

/// The seal of an entry waiting to be linked: over its id and contents, under a label of its
/// own, so that it cannot stand for a linked entry's mac.
fn pending_mac(key: &hmac::Key, p: &Pending) -> String {
    let mut mac = hmac::Context::with_key(key);
    mac.update(b"acmegate audit pending v1");
    mac.update(&p.at.to_be_bytes());
    for field in [&p.id, &p.actor, &p.action, &p.resource, &p.details] {
        put(&mut mac, field.as_bytes());
    }
    crate::hex::lower(mac.sign().as_ref())
}

impl Pending {
    /// This entry as number `seq` of the chain, after the entry whose mac is `prev_mac`.
    fn chained(self, key: &hmac::Key, seq: i64, prev_mac: String) -> AuditEntry {
        let mut entry = AuditEntry {
            seq,
            at: self.at,
            actor: self.actor,
            action: self.action,
            resource: self.resource,
            details: self.details,
            prev_mac,
            mac: String::new(),
        };
        entry.mac = entry_mac(key, &entry);
        entry
    }
}

fn head_seal(key: &hmac::Key, seq: i64, mac: &str) -> String {
    seal(key, b"acmegate audit head v1", seq, mac)
}

/// The end of the chain as one SQLite write batch sees it: read from `audit_head` at the
/// batch's first append, carried from entry to entry in memory, and written back once before
/// the batch commits ([`Tail::save`]). The writer's transaction holds the database's write
/// lock, so nothing else moves the head meanwhile. Reading and rewriting the head row for each
/// entry were two of the three statements an entry cost. A write whose savepoint rolls back
/// puts back the tail it started from (`writer::in_savepoint`).
#[derive(Clone, Debug, Default)]
pub(super) struct Tail {
    /// The last entry's seq and mac, once read.
    end: Option<(i64, String)>,
    /// The key of the entries appended since the head row was read, to seal it with; `None`
    /// while the row is current.
    unsaved: Option<std::sync::Arc<hmac::Key>>,
}

impl Tail {
    fn end(&mut self, c: &mut diesel::SqliteConnection) -> Result<(i64, String)> {
        if let Some(end) = &self.end {
            return Ok(end.clone());
        }
        let head: Head = audit_head::table
            .find(1)
            .select(Head::as_select())
            .first(c)?;
        self.end = Some((head.seq, head.mac.clone()));
        Ok((head.seq, head.mac))
    }

    fn moved(&mut self, seq: i64, mac: String, key: &std::sync::Arc<hmac::Key>) {
        self.end = Some((seq, mac));
        self.unsaved = Some(key.clone());
    }

    /// Writes the head row if entries were appended since it was read.
    pub(super) fn save(&mut self, c: &mut DbConnection) -> Result<()> {
        let (Some(key), Some((seq, mac))) = (self.unsaved.take(), &self.end) else {
            return Ok(());
        };
        diesel::update(audit_head::table.find(1))
            .set((
                audit_head::seq.eq(seq),
                audit_head::mac.eq(mac),
                audit_head::seal.eq(head_seal(&key, *seq, mac)),
            ))
            .execute(c)?;
        Ok(())
    }
}

impl Auditor {
    pub fn new(key: hmac::Key) -> Self {
        Self {
            key: std::sync::Arc::new(key),
            actor: SYSTEM_ACTOR.into(),
        }
    }

    /// Records `event` inside the caller's transaction on `c`: appended to the chain after
    /// `tail` on SQLite, written to wait for linking on PostgreSQL (see the module comment).
    pub(super) fn append(&self, c: &mut DbConnection, tail: &mut Tail, event: Event) -> Result<()> {
        let mut pending = Pending {
            id: String::new(),
            at: chrono::Utc::now().timestamp(),
            actor: self.actor.to_string(),
            action: event.action.to_string(),
            resource: event.resource,
            details: event.details.to_string(),
            mac: String::new(),
        };
        match c {
            DbConnection::Pg(pg) => {
                pending.id = pending_id();
                pending.mac = pending_mac(&self.key, &pending);
                diesel::insert_into(audit_pending::table)
                    .values(&pending)
                    .execute(pg)?;
            }
            // The single writer already serializes appends.
            DbConnection::Sqlite(sqlite) => {
                let (seq, prev_mac) = tail.end(sqlite)?;
                let entry = pending.chained(&self.key, seq + 1, prev_mac);
                diesel::insert_into(audit_log::table)
                    .values(&entry)
                    .execute(sqlite)?;
                tail.moved(entry.seq, entry.mac, &self.key);
            }
        }
        Ok(())
    }

    /// Links up to [`LINK_BATCH`] waiting entries into the chain, oldest first, in one
    /// transaction that holds the head's row lock (so linkers on several replicas take turns);
    /// returns how many. A waiting entry whose seal does not hold stops the linking, naming it.
    fn link_batch(&self, pg: &mut diesel::PgConnection) -> Result<usize> {
        pg.transaction(|pg| {
            let head: Head = audit_head::table
                .find(1)
                .select(Head::as_select())
                .for_update()
                .first(pg)?;
            let pending: Vec<Pending> = audit_pending::table
                .select(Pending::as_select())
                .order(audit_pending::id.asc())
                .limit(LINK_BATCH)
                .load(pg)?;
            if pending.is_empty() {
                return Ok(0);
            }
            // Exactly these: an entry with an older id may commit after this read.
            let ids: Vec<String> = pending.iter().map(|p| p.id.clone()).collect();
            let (mut seq, mut prev_mac) = (head.seq, head.mac);
            let mut entries = Vec::with_capacity(pending.len());
            for p in pending {
                if pending_mac(&self.key, &p) != p.mac {
                    return Err(StoreError::AuditAltered(format!(
                        "audit entry {} ({} on {}) that waits to be linked was altered: \
                         its contents do not match its seal",
                        p.id, p.action, p.resource
                    )));
                }
                seq += 1;
                let entry = p.chained(&self.key, seq, prev_mac);
                prev_mac = entry.mac.clone();
                entries.push(entry);
            }
            diesel::insert_into(audit_log::table)
                .values(&entries)
                .execute(pg)?;
            diesel::delete(audit_pending::table.filter(audit_pending::id.eq_any(&ids)))
                .execute(pg)?;
            diesel::update(audit_head::table.find(1))
                .set((
                    audit_head::seq.eq(seq),
                    audit_head::mac.eq(&prev_mac),
                    audit_head::seal.eq(head_seal(&self.key, seq, &prev_mac)),
                ))
                .execute(pg)?;
            Ok(entries.len())
        })
    }
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry links to the one before and the head names the last. `entries` is the
    /// chain's length; the first `archived` of them were moved to archive files
    /// (`audit_archive`), and the entries in the database link to their sealed checkpoint.
    Intact { entries: i64, archived: i64 },
    /// The first place where the chain does not hold.
    Broken { seq: i64, reason: String },
}

/// Which entries a query shows; unset fields match everything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// A prefix of the resource (`certificate/`, `account/abc`).
    pub resource: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl AuditFilter {
    /// Every entry of one action (`certificate.deployed`, `retention.prune`, ...).
    pub fn action(action: &str) -> Self {
        Self {
            action: Some(action.to_owned()),
            ..Self::default()
        }
    }
}

fn filtered(f: &AuditFilter) -> audit_log::BoxedQuery<'static, Backend> {
    let mut q = audit_log::table.into_boxed();
    if let Some(actor) = &f.actor {
        q = q.filter(audit_log::actor.eq(actor.clone()));
    }
    if let Some(action) = &f.action {
        q = q.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(resource) = &f.resource {
        let escaped = resource
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q = q.filter(audit_log::resource.like(format!("{escaped}%")).escape('\\'));
    }
    if let Some(since) = f.since {
        q = q.filter(audit_log::at.ge(since));
    }
    if let Some(until) = f.until {
        q = q.filter(audit_log::at.lt(until));
    }
    q
}

/// Entries checked per query while verifying: bounded memory on a long log.
const VERIFY_CHUNK: i64 = 1000;

impl Store {
    /// This store with changes signed by `auditor` (attributed to its actor).
    pub fn with_auditor(mut self, auditor: Auditor) -> Store {
        self.auditor = Some(auditor);
        self
    }

    /// A handle whose changes are attributed to `actor`.
    pub fn acting_as(&self, actor: impl Into<std::sync::Arc<str>>) -> Store {
        let mut store = self.clone();
        if let Some(a) = &mut store.auditor {
            a.actor = actor.into();
        }
        store
    }

    /// Records `event` in a transaction of its own: an action that changes nothing else
    /// (a plugin reload, a CRL rebuilt on request).
    pub fn record(&self, event: Event) -> Result<()> {
        self.write_audited(event, |_| Ok(()))
    }

    /// Entries matching `filter`, newest first.
    pub fn audit_entries(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>> {
        // An entry that cannot be linked leaves the listing at the linked ones; the verdict
        // names it.
        match self.link_pending_audit() {
            Ok(_) | Err(StoreError::AuditAltered(_)) => {}
            Err(e) => return Err(e),
        }
        let c = &mut *self.conn()?;
        let total = filtered(filter).count().get_result(c)?;
        let items = filtered(filter)
            .select(AuditEntry::as_select())
            .order(audit_log::seq.desc())
            .offset(page.offset)
            .limit(page.limit)
            .load(c)?;
        Ok(Page { items, total })
    }

    /// Walks the chain in the database, from the archive checkpoint (entry 1 when nothing was
    /// archived), and names the first broken or missing link.
    pub fn verify_audit(&self) -> Result<Verdict> {
        let auditor = self
            .auditor
            .as_ref()
            .ok_or_else(|| StoreError::Database("no audit key: cannot verify".into()))?;
        let key = &auditor.key;
        // An entry that cannot be linked is reported after the chain, whose breaks come first.
        let unlinkable = match self.link_pending_audit() {
            Err(StoreError::AuditAltered(reason)) => Some(reason),
            other => other.map(|_| None)?,
        };
        let c = &mut *self.conn()?;
        let checkpoint = Checkpoint::read(c)?;
        if !checkpoint.is_sealed(key) {
            return Ok(Verdict::Broken {
                seq: checkpoint.archived_seq,
                reason: "the archive checkpoint was altered".into(),
            });
        }
        let mut expected_seq = checkpoint.archived_seq + 1;
        let mut prev_mac = checkpoint.archived_mac.clone();
        loop {
            let chunk: Vec<AuditEntry> = audit_log::table
                .filter(audit_log::seq.ge(expected_seq))
                .select(AuditEntry::as_select())
                .order(audit_log::seq.asc())
                .limit(VERIFY_CHUNK)
                .load(c)?;
            for e in &chunk {
                if e.seq != expected_seq {
                    return Ok(Verdict::Broken {
                        seq: expected_seq,
                        reason: format!(
                            "entry {expected_seq} is missing (the next one is {})",
                            e.seq
                        ),
                    });
                }
                if e.prev_mac != prev_mac {
                    return Ok(Verdict::Broken {
                        seq: e.seq,
                        reason: "does not link to the entry before it".into(),
                    });
                }
                if entry_mac(key, e) != e.mac {
                    return Ok(Verdict::Broken {
                        seq: e.seq,
                        reason: "its contents do not match its mac (edited)".into(),
                    });
                }
                prev_mac = e.mac.clone();
                expected_seq += 1;
            }
            if (chunk.len() as i64) < VERIFY_CHUNK {
                break;
            }
        }
        let last = expected_seq - 1;
        if expected_seq == 1 {
            // Entries with seq < 1 would be skipped by the walk above.
            let stray: i64 = audit_log::table.count().get_result(c)?;
            if stray > 0 {
                return Ok(Verdict::Broken {
                    seq: 1,
                    reason: format!("entry 1 is missing ({stray} entries with other numbers)"),
                });
            }
        }
        let head: Head = audit_head::table
            .find(1)
            .select(Head::as_select())
            .first(c)?;
        let sealed = head.seq == 0 && head.seal.is_empty()
            || head_seal(key, head.seq, &head.mac) == head.seal;
        if !sealed {
            return Ok(Verdict::Broken {
                seq: head.seq,
                reason: "the head record was altered".into(),
            });
        }
        if head.seq != last || head.mac != prev_mac {
            return Ok(Verdict::Broken {
                seq: last + 1,
                reason: format!("the log ends at entry {last} but {} were written", head.seq),
            });
        }
        if let Some(reason) = unlinkable {
            return Ok(Verdict::Broken {
                seq: last + 1,
                reason,
            });
        }
        Ok(Verdict::Intact {
            entries: last,
            archived: checkpoint.archived_seq,
        })
    }

    /// Links every entry waiting on PostgreSQL into the chain (see the module comment); returns
    /// how many. Nothing to do on SQLite, or without the audit key (entries stay waiting for a
    /// process that has it).
    pub fn link_pending_audit(&self) -> Result<usize> {
        let Some(auditor) = &self.auditor else {
            return Ok(0);
        };
        let mut pooled = self.conn()?;
        let DbConnection::Pg(pg) = &mut *pooled else {
            return Ok(0);
        };
        // Most calls find nothing: one read, no transaction, no lock.
        let waiting: bool = diesel::select(diesel::dsl::exists(
            audit_pending::table.select(audit_pending::id),
        ))
        .get_result(pg)?;
        if !waiting {
            return Ok(0);
        }
        let mut linked = 0;
        loop {
            let batch = auditor.link_batch(pg)?;
            linked += batch;
            if (batch as i64) < LINK_BATCH {
                return Ok(linked);
            }
        }
    }

    /// Runs `f` and appends `event` in the same transaction (just `f` without an auditor).
    pub(super) fn write_audited<T, F>(&self, event: Event, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T> + Send + 'static,
    {
        self.write_maybe_audited(move |c| Ok((f(c)?, Some(event))))
    }

    /// Like [`Store::write_audited`], for changes that may not happen (a state transition whose
    /// precondition failed) or that may carry others with them: `f` returns the events to
    /// record (an `Option` or a `Vec`), in order.
    pub(super) fn write_maybe_audited<T, E, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        E: IntoIterator<Item = Event>,
        F: FnOnce(&mut DbConnection) -> Result<(T, E)> + Send + 'static,
    {
        let auditor = self.auditor.clone();
        self.write_chained(move |c, tail| {
            let (out, events) = f(c)?;
            if let Some(a) = auditor {
                for event in events {
                    a.append(c, tail, event)?;
                }
            }
            Ok(out)
        })
    }
}
