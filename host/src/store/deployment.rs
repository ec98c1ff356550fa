//! Deployment jobs: what makes a deployment owed to a target durable.
//!
//! Jobs are inserted with their certificate ([`Store::insert_certificate`]) and deleted in the
//! transaction that audits the outcome. Whoever attempts a job holds a lease on it; while the
//! attempt runs the job is not due (its `next_attempt_at` is the lease's end), so neither its
//! holder's worker nor anyone else starts it twice. A job whose lease ran out belongs to a
//! process that died, and the next claim anywhere takes it over.
//!
//! Jobs that carry a generated private key stay leased to the process that holds the key
//! between attempts (the key is never stored), so only that process retries them; if it dies,
//! another takes the job over when the lease runs out and fails it, saying why.

use diesel::prelude::*;

use super::schema::deployment_jobs;
use super::{DeploymentJob, Event, Result, Store};

impl Store {
    /// Leases up to `limit` deployments due at `now` to `owner` until `lease_until`: those
    /// nobody holds, those whose holder's lease ran out, and `owner`'s own retries. Each lease
    /// is a compare-and-set on the old one, so of several processes claiming at once exactly
    /// one gets each job.
    pub fn claim_due_deployments(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<DeploymentJob>> {
        let due: Vec<DeploymentJob> = deployment_jobs::table
            .filter(deployment_jobs::next_attempt_at.le(now))
            .filter(
                deployment_jobs::lease_until
                    .le(now)
                    .or(deployment_jobs::lease_owner.eq(owner)),
            )
            .order(deployment_jobs::next_attempt_at)
            .limit(limit)
            .select(DeploymentJob::as_select())
            .load(&mut *self.conn()?)?;
        let who = owner.to_owned();
        self.claim_each(
            due,
            |job| {
                let (old, who) = (job.clone(), who.clone());
                move |c: &mut super::conn::DbConnection| {
                    Ok(diesel::update(
                        deployment_jobs::table
                            .find((&old.certificate_id, &old.target))
                            .filter(deployment_jobs::lease_until.eq(old.lease_until))
                            .filter(deployment_jobs::next_attempt_at.eq(old.next_attempt_at)),
                    )
                    .set((
                        deployment_jobs::lease_owner.eq(&who),
                        deployment_jobs::lease_until.eq(lease_until),
                        deployment_jobs::next_attempt_at.eq(lease_until),
                    ))
                    .execute(c)?)
                }
            },
            |job| DeploymentJob {
                lease_owner: Some(owner.to_owned()),
                lease_until,
                next_attempt_at: lease_until,
                ..job
            },
        )
    }

    /// Records a failed attempt: `job` as given (attempts, when it is due, who holds it
    /// until when, the error). Only the lease holder `owner` may; returns whether it did.
    pub fn reschedule_deployment(&self, job: &DeploymentJob, owner: &str) -> Result<bool> {
        let (job, owner) = (job.clone(), owner.to_owned());
        self.write(move |c| {
            Ok(diesel::update(
                deployment_jobs::table
                    .find((&job.certificate_id, &job.target))
                    .filter(deployment_jobs::lease_owner.eq(&owner)),
            )
            .set((
                deployment_jobs::attempts.eq(job.attempts),
                deployment_jobs::next_attempt_at.eq(job.next_attempt_at),
                deployment_jobs::lease_owner.eq(&job.lease_owner),
                deployment_jobs::lease_until.eq(job.lease_until),
                deployment_jobs::last_error.eq(&job.last_error),
            ))
            .execute(c)?
                == 1)
        })
    }

    /// Settles a deployment for good (deployed, or failed after its last attempt): deletes the
    /// job and audits `event` in one transaction. Only the lease holder `owner` may; returns
    /// false, recording nothing, when the job was no longer `owner`'s.
    pub fn settle_deployment(
        &self,
        certificate_id: &str,
        target: &str,
        owner: &str,
        event: Event,
    ) -> Result<bool> {
        let (id, target, owner) = (
            certificate_id.to_owned(),
            target.to_owned(),
            owner.to_owned(),
        );
        self.write_maybe_audited(move |c| {
            let deleted = diesel::delete(
                deployment_jobs::table
                    .find((&id, &target))
                    .filter(deployment_jobs::lease_owner.eq(&owner)),
            )
            .execute(c)?;
            Ok((deleted == 1, (deleted == 1).then_some(event)))
        })
    }

    /// Every deployment still owed, oldest first.
    pub fn deployment_jobs(&self) -> Result<Vec<DeploymentJob>> {
        Ok(deployment_jobs::table
            .order(deployment_jobs::created_at)
            .select(DeploymentJob::as_select())
            .load(&mut *self.conn()?)?)
    }
}
