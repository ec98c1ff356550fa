//! Retention: what the database forgets, so that it does not grow without end.
//!
//! ACME objects have lifetimes (RFC 8555 §7.1.3, §7.1.4): once an authorization has expired
//! it authorizes nothing, and an order that expired without a certificate can never get one.
//! Such rows are kept for a grace period (`cutoff`: the caller's now minus
//! `retention.keep_days`) for operators and clients that look back, then deleted:
//!
//! - authorizations (with their challenges and any validation job) that expired before the
//!   cutoff, when their order is `valid` (its certificate is what counts from then on) or is
//!   itself `pending`, `ready` or `invalid` and expired before the cutoff;
//! - orders that are `pending`, `ready` or `invalid`, expired before the cutoff and have no
//!   authorization and no certificate left (with any issuance job, and the ARI
//!   `replaced_by` marks that name them: an expired or invalid replacement frees its
//!   certificate for another one anyway, RFC 9773 §5);
//! - redeemed nonces past their expiry, and expiry notices of certificates that expired
//!   before the cutoff (and at least two days ago, so the last notice is never sent again).
//!
//! Kept for good: certificates (downloadable, revocable, listed on CRLs and in ARI), the
//! `valid` orders they belong to (certificates and ARI marks reference them), and the audit
//! log, which names objects by id and needs none of these rows: the chain verifies as
//! before. Each batch of deletions appends a `retention.prune` entry (counts and cutoff) in
//! its own transaction, so the log records what went and when.
//!
//! Deletions run in batches of at most [`BATCH`] authorizations and orders, one transaction
//! each: on SQLite a batch shares the single writer with requests and must not hold it long.

use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::conn::DbConnection;
use super::schema::{
    authorizations, certificates, challenges, expiry_notices, issuance_jobs, orders,
    redeemed_nonces, scheduled_tasks, validation_jobs,
};
use super::{Event, Result, Store, StoreError};
use crate::acme::OrderStatus;

/// Authorizations, and orders, deleted per transaction at most.
pub const BATCH: i64 = 500;

/// The name of the retention run in `scheduled_tasks`.
pub const RETENTION_TASK: &str = "retention";

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Order statuses in which nothing more can happen once the order has expired.
const UNFINISHED: [OrderStatus; 3] = [
    OrderStatus::Pending,
    OrderStatus::Ready,
    OrderStatus::Invalid,
];

/// What a prune deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub orders: usize,
    pub authorizations: usize,
    pub challenges: usize,
    pub nonces: usize,
    pub expiry_notices: usize,
    /// Transactions that deleted orders, authorizations or challenges (one audit entry each).
    pub batches: usize,
}

impl Pruned {
    fn add(&mut self, other: Pruned) {
        self.orders += other.orders;
        self.authorizations += other.authorizations;
        self.challenges += other.challenges;
        self.nonces += other.nonces;
        self.expiry_notices += other.expiry_notices;
        self.batches += other.batches;
    }
}

/// The database's size: what it takes on disk, and on SQLite how much of that holds data
/// (pages freed by deletions stay in the file and are reused by later writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatabaseSize {
    /// SQLite: the file and its write-ahead log; PostgreSQL: `pg_database_size`.
    pub on_disk: u64,
    /// SQLite: pages in use times the page size; PostgreSQL: not known without a scan.
    pub in_use: Option<u64>,
}

/// One batch, in the caller's transaction: see the module documentation for what goes.
fn prune_batch(c: &mut DbConnection, cutoff: i64, limit: i64) -> Result<(Pruned, Option<Event>)> {
    let authz_ids: Vec<String> = authorizations::table
        .inner_join(orders::table.on(orders::id.eq(authorizations::order_id)))
        .filter(authorizations::expires.lt(cutoff))
        .filter(
            orders::status.eq(OrderStatus::Valid).or(orders::status
                .eq_any(UNFINISHED)
                .and(orders::expires.lt(cutoff))),
        )
        .select(authorizations::id)
        .order(authorizations::expires.asc())
        .limit(limit)
        .load(c)?;
    let of_these = || {
        challenges::table
            .filter(challenges::authz_id.eq_any(authz_ids.clone()))
            .select(challenges::id)
    };
    diesel::delete(validation_jobs::table.filter(validation_jobs::challenge_id.eq_any(of_these())))
        .execute(c)?;
    let challenges_gone =
        diesel::delete(challenges::table.filter(challenges::authz_id.eq_any(&authz_ids)))
            .execute(c)?;
    let authzs_gone =
        diesel::delete(authorizations::table.filter(authorizations::id.eq_any(&authz_ids)))
            .execute(c)?;
    let order_ids: Vec<String> = orders::table
        .filter(orders::status.eq_any(UNFINISHED))
        .filter(orders::expires.lt(cutoff))
        .filter(not(exists(
            authorizations::table.filter(authorizations::order_id.eq(orders::id)),
        )))
        .filter(not(exists(
            certificates::table.filter(certificates::order_id.eq(orders::id.nullable())),
        )))
        .select(orders::id)
        .order(orders::expires.asc())
        .limit(limit)
        .load(c)?;
    diesel::update(certificates::table.filter(certificates::replaced_by.eq_any(&order_ids)))
        .set(certificates::replaced_by.eq(None::<String>))
        .execute(c)?;
    diesel::delete(issuance_jobs::table.filter(issuance_jobs::order_id.eq_any(&order_ids)))
        .execute(c)?;
    let orders_gone =
        diesel::delete(orders::table.filter(orders::id.eq_any(&order_ids))).execute(c)?;
    let pruned = Pruned {
        orders: orders_gone,
        authorizations: authzs_gone,
        challenges: challenges_gone,
        batches: usize::from(orders_gone + authzs_gone + challenges_gone > 0),
        ..Pruned::default()
    };
    let event = (pruned.batches > 0).then(|| {
        Event::new(
            "retention.prune",
            "retention",
            serde_json::json!({
                "cutoff": cutoff,
                "orders": orders_gone,
                "authorizations": authzs_gone,
                "challenges": challenges_gone,
            }),
        )
    });
    Ok((pruned, event))
}

impl Store {
    /// Deletes what expired before `cutoff` (see the module documentation), in batches of at
    /// most `limit` orders and authorizations per transaction, until nothing is left; and
    /// redeemed nonces that expired before `now`.
    pub fn prune(&self, cutoff: i64, now: i64, limit: i64) -> Result<Pruned> {
        if limit < 1 {
            return Err(StoreError::Database(format!(
                "prune batch limit {limit}: expected 1 or more"
            )));
        }
        let mut total = Pruned::default();
        loop {
            let batch = self.write_maybe_audited(move |c| prune_batch(c, cutoff, limit))?;
            total.add(batch);
            // A batch below the limit on both counts found the last of them.
            if (batch.authorizations as i64) < limit && (batch.orders as i64) < limit {
                break;
            }
        }
        let notices_before = cutoff.min(now - 2 * DAY);
        total.add(self.write(move |c| {
            let nonces =
                diesel::delete(redeemed_nonces::table.filter(redeemed_nonces::expires_at.lt(now)))
                    .execute(c)?;
            let expiry_notices = diesel::delete(
                expiry_notices::table.filter(
                    expiry_notices::serial.eq_any(
                        certificates::table
                            .filter(certificates::not_after.lt(notices_before))
                            .select(certificates::serial),
                    ),
                ),
            )
            .execute(c)?;
            Ok(Pruned {
                nonces,
                expiry_notices,
                ..Pruned::default()
            })
        })?);
        Ok(total)
    }

    /// Claims the run of `task` due at `now` for `owner`: true for exactly one claimer per
    /// due run (a compare-and-set that moves the next run to `next_run_at`), false when the
    /// run is not due or another process claimed it.
    pub fn claim_scheduled(
        &self,
        task: &str,
        owner: &str,
        now: i64,
        next_run_at: i64,
    ) -> Result<bool> {
        let due: i64 = scheduled_tasks::table
            .find(task)
            .select(scheduled_tasks::next_run_at)
            .first(&mut *self.conn()?)?;
        if due > now {
            // Not due: no write, so that polling costs one read.
            return Ok(false);
        }
        let (task, owner) = (task.to_owned(), owner.to_owned());
        self.write(move |c| {
            Ok(diesel::update(
                scheduled_tasks::table
                    .find(&task)
                    .filter(scheduled_tasks::next_run_at.eq(due)),
            )
            .set((
                scheduled_tasks::next_run_at.eq(next_run_at),
                scheduled_tasks::claimed_by.eq(Some(&owner)),
                scheduled_tasks::claimed_at.eq(Some(now)),
            ))
            .execute(c)?
                == 1)
        })
    }

    /// When `task` is next due, and which process claimed it last at what time.
    pub fn scheduled(&self, task: &str) -> Result<(i64, Option<String>, Option<i64>)> {
        Ok(scheduled_tasks::table
            .find(task)
            .select((
                scheduled_tasks::next_run_at,
                scheduled_tasks::claimed_by,
                scheduled_tasks::claimed_at,
            ))
            .first(&mut *self.conn()?)?)
    }

    /// The database's size now (see [`DatabaseSize`]).
    pub fn database_size(&self) -> Result<DatabaseSize> {
        #[derive(QueryableByName)]
        struct Bytes {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            bytes: i64,
        }
        let mut pooled = self.conn()?;
        let counted: Bytes = match &mut *pooled {
            DbConnection::Sqlite(c) => diesel::sql_query(
                "SELECT (p.page_count - f.freelist_count) * s.page_size AS bytes \
                 FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
            )
            .get_result(c)?,
            DbConnection::Pg(c) => {
                diesel::sql_query("SELECT pg_database_size(current_database())::BIGINT AS bytes")
                    .get_result(c)?
            }
        };
        let counted = counted.bytes.max(0).unsigned_abs();
        Ok(match &self.sqlite_path {
            Some(path) => {
                let len = |p: &str| std::fs::metadata(p).map_or(0, |m| m.len());
                DatabaseSize {
                    on_disk: len(path) + len(&format!("{path}-wal")),
                    in_use: Some(counted),
                }
            }
            None => DatabaseSize {
                on_disk: counted,
                in_use: None,
            },
        })
    }
}
