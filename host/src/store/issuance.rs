//! Issuance jobs: the durable queue between finalize and the issuer.
//!
//! A job is created in the transaction that moves its order from `ready` to `processing`, and
//! deleted in the one that moves it on to `valid` (with its certificate) or `invalid`. An issuer
//! that answers at once (the built-in CA) needs no job: its certificate is stored and the order
//! moved from `ready` to `valid` in one transaction ([`Store::issue_ready_order`]). Whoever
//! works on a job holds a lease on it; every completion checks the order is still `processing`,
//! so two processes that both took a job (one of them after the other's lease ran out) can never
//! store two certificates for one order.

use diesel::prelude::*;

use crate::acme::OrderStatus;

use super::schema::{issuance_jobs, orders};
use super::{Certificate, DeploymentJob, IssuanceJob, Result, Store};

impl Store {
    /// Moves the order from `ready` to `processing` and queues `job` for it, in one
    /// transaction. Returns false (and queues nothing) when the order was not `ready`.
    pub fn begin_issuance(&self, job: &IssuanceJob) -> Result<bool> {
        let job = job.clone();
        self.write_maybe_audited(move |c| {
            let moved = diesel::update(
                orders::table
                    .find(&job.order_id)
                    .filter(orders::status.eq(OrderStatus::Ready)),
            )
            .set(orders::status.eq(OrderStatus::Processing))
            .execute(c)?;
            if moved == 0 {
                return Ok((false, None));
            }
            diesel::insert_into(issuance_jobs::table)
                .values(&job)
                .execute(c)?;
            let event = super::status_event("order", &job.order_id, "ready", "processing", None);
            Ok((true, Some(event)))
        })
    }

    /// Stores `cert`, signed at once for the `ready` order it names, makes the order `valid` and
    /// queues `deployments`, in one transaction: the path of an issuer that answers at once (the
    /// built-in CA), which needs no job and no `processing` in between. A crash before the
    /// commit leaves the order `ready`, to be finalized again. Conflict (and nothing stored)
    /// when the order was not `ready`.
    pub fn issue_ready_order(
        &self,
        cert: &Certificate,
        deployments: &[DeploymentJob],
    ) -> Result<()> {
        let (cert, deployments) = (cert.clone(), deployments.to_vec());
        self.write_audited(super::issue_event(&cert), move |c| {
            if cert.order_id.is_none() {
                return Err(super::StoreError::Database(format!(
                    "certificate {} names no order",
                    cert.serial
                )));
            }
            super::store_certificate(c, &cert, &deployments, OrderStatus::Ready)
        })
    }

    pub fn issuance_job(&self, order_id: &str) -> Result<IssuanceJob> {
        Ok(issuance_jobs::table
            .find(order_id)
            .select(IssuanceJob::as_select())
            .first(&mut *self.conn()?)?)
    }

    /// Leases up to `limit` jobs that are due at `now` and not leased by anyone, to `owner`
    /// until `lease_until`. Each lease is a compare-and-set on the old lease, so of several
    /// processes claiming at once exactly one gets each job.
    pub fn claim_due_jobs(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<IssuanceJob>> {
        let due: Vec<IssuanceJob> = issuance_jobs::table
            .filter(issuance_jobs::next_attempt_at.le(now))
            .filter(issuance_jobs::lease_until.le(now))
            .order(issuance_jobs::next_attempt_at)
            .limit(limit)
            .select(IssuanceJob::as_select())
            .load(&mut *self.conn()?)?;
        let who = owner.to_owned();
        self.claim_each(
            due,
            |job| {
                let (id, old_until, who) = (job.order_id.clone(), job.lease_until, who.clone());
                move |c: &mut super::conn::DbConnection| {
                    Ok(diesel::update(
                        issuance_jobs::table
                            .find(&id)
                            .filter(issuance_jobs::lease_until.eq(old_until)),
                    )
                    .set((
                        issuance_jobs::lease_owner.eq(&who),
                        issuance_jobs::lease_until.eq(lease_until),
                    ))
                    .execute(c)?)
                }
            },
            |job| IssuanceJob {
                lease_owner: Some(owner.to_owned()),
                lease_until,
                ..job
            },
        )
    }

    /// Records a failed or unfinished attempt and releases the lease: the job is due again at
    /// `job.next_attempt_at`. Only the lease holder may do this; returns whether it did.
    pub fn reschedule_job(&self, job: &IssuanceJob) -> Result<bool> {
        let job = job.clone();
        self.write(move |c| {
            Ok(diesel::update(
                issuance_jobs::table
                    .find(&job.order_id)
                    .filter(issuance_jobs::lease_owner.eq(&job.lease_owner)),
            )
            .set((
                issuance_jobs::attempts.eq(job.attempts),
                issuance_jobs::next_attempt_at.eq(job.next_attempt_at),
                issuance_jobs::handle.eq(&job.handle),
                issuance_jobs::last_error.eq(&job.last_error),
                issuance_jobs::lease_owner.eq(None::<String>),
                issuance_jobs::lease_until.eq(0),
            ))
            .execute(c)?
                == 1)
        })
    }

    /// Gives the order up: `processing` → `invalid` with `problem` (JSON), job deleted, in one
    /// transaction. Returns false when the order was no longer processing.
    pub fn fail_issuance(&self, order_id: &str, problem: &str) -> Result<bool> {
        let (id, problem) = (order_id.to_owned(), problem.to_owned());
        self.write_maybe_audited(move |c| {
            let moved = diesel::update(
                orders::table
                    .find(&id)
                    .filter(orders::status.eq(OrderStatus::Processing)),
            )
            .set((
                orders::status.eq(OrderStatus::Invalid),
                orders::error.eq(&problem),
            ))
            .execute(c)?;
            diesel::delete(issuance_jobs::table.find(&id)).execute(c)?;
            let event = (moved == 1).then(|| {
                super::status_event("order", &id, "processing", "invalid", Some(&problem))
            });
            Ok((moved == 1, event))
        })
    }

    /// When the earliest job can next be claimed (it is due and its lease has run out), as
    /// seen at `now`; `None` when there are no jobs.
    pub fn next_job_due(&self, now: i64) -> Result<Option<i64>> {
        let conn = &mut *self.conn()?;
        let unleased: Option<i64> = issuance_jobs::table
            .filter(issuance_jobs::lease_until.le(now))
            .select(diesel::dsl::min(issuance_jobs::next_attempt_at))
            .first(conn)?;
        let leased: Option<i64> = issuance_jobs::table
            .filter(issuance_jobs::lease_until.gt(now))
            .select(diesel::dsl::min(issuance_jobs::lease_until))
            .first(conn)?;
        Ok(match (unleased, leased) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}
