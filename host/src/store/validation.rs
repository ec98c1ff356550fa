//! Validation jobs: what makes a challenge under validation durable.
//!
//! A job is created in the transaction that moves its challenge from `pending` to `processing`,
//! and deleted in the one that records the outcome ([`Store::record_validation`]). Whoever
//! validates holds a lease; a job whose lease has run out belongs to a process that died, and
//! the next claim takes it over. Recording checks the challenge is still undecided, so two
//! processes that both validated (one after the other's lease ran out) record one outcome.

use diesel::prelude::*;

use crate::acme::ChallengeStatus;

use super::schema::{challenges, deployment_jobs, issuance_jobs, validation_jobs};
use super::{Result, Store, ValidationJob};

impl Store {
    /// Moves the challenge from `pending` to `processing` and queues `job` for it, in one
    /// transaction. Returns false (and queues nothing) when the challenge was not `pending`.
    pub fn begin_validation(&self, job: &ValidationJob) -> Result<bool> {
        let job = job.clone();
        self.write(move |c| {
            let moved = diesel::update(
                challenges::table
                    .find(&job.challenge_id)
                    .filter(challenges::status.eq(ChallengeStatus::Pending)),
            )
            .set(challenges::status.eq(ChallengeStatus::Processing))
            .execute(c)?;
            if moved == 1 {
                diesel::insert_into(validation_jobs::table)
                    .values(&job)
                    .execute(c)?;
            }
            Ok(moved == 1)
        })
    }

    pub fn validation_job(&self, challenge_id: &str) -> Result<ValidationJob> {
        Ok(validation_jobs::table
            .find(challenge_id)
            .select(ValidationJob::as_select())
            .first(&mut *self.conn()?)?)
    }

    /// Extends `owner`'s lease on the job to `lease_until` while it still works on it. Returns
    /// false when the lease is no longer `owner`'s (it ran out and another process took the
    /// job) or the job is done.
    pub fn renew_validation_lease(
        &self,
        challenge_id: &str,
        owner: &str,
        lease_until: i64,
    ) -> Result<bool> {
        let (id, owner) = (challenge_id.to_owned(), owner.to_owned());
        self.write(move |c| {
            Ok(diesel::update(
                validation_jobs::table
                    .find(&id)
                    .filter(validation_jobs::lease_owner.eq(&owner)),
            )
            .set(validation_jobs::lease_until.eq(lease_until))
            .execute(c)?
                == 1)
        })
    }

    /// Leases up to `limit` jobs whose lease has run out at `now` to `owner` until
    /// `lease_until`, counting one more attempt on each. Each lease is a compare-and-set on the
    /// old one, so of several processes claiming at once exactly one gets each job.
    pub fn claim_abandoned_validations(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ValidationJob>> {
        let abandoned: Vec<ValidationJob> = validation_jobs::table
            .filter(validation_jobs::lease_until.le(now))
            .order(validation_jobs::lease_until)
            .limit(limit)
            .select(ValidationJob::as_select())
            .load(&mut *self.conn()?)?;
        let who = owner.to_owned();
        self.claim_each(
            abandoned,
            |job| {
                let (id, old_until, who) = (job.challenge_id.clone(), job.lease_until, who.clone());
                move |c: &mut super::conn::DbConnection| {
                    Ok(diesel::update(
                        validation_jobs::table
                            .find(&id)
                            .filter(validation_jobs::lease_until.eq(old_until)),
                    )
                    .set((
                        validation_jobs::lease_owner.eq(&who),
                        validation_jobs::lease_until.eq(lease_until),
                        validation_jobs::attempts.eq(validation_jobs::attempts + 1),
                    ))
                    .execute(c)?)
                }
            },
            |job| ValidationJob {
                attempts: job.attempts + 1,
                lease_owner: Some(owner.to_owned()),
                lease_until,
                ..job
            },
        )
    }

    /// Forgets the leases of `owner` (every lease when `None`), on issuance, validation and
    /// deployment jobs alike, so that the work they cover is taken up now instead of when they run out.
    /// Only for leases whose holder is known to be gone: a process's own earlier life (its
    /// owner name is kept in its data directory), or anyone's on a store no other process uses
    /// (SQLite). Returns how many jobs were released.
    pub fn release_leases(&self, owner: Option<&str>) -> Result<usize> {
        use diesel::sql_types::Bool;
        let everyone = owner.is_none();
        let owner = owner.unwrap_or_default().to_owned();
        self.write(move |c| {
            macro_rules! release {
                ($jobs:ident) => {
                    diesel::update(
                        $jobs::table.filter(
                            $jobs::lease_owner
                                .eq(&owner)
                                .or(everyone.into_sql::<Bool>()),
                        ),
                    )
                    .set((
                        $jobs::lease_owner.eq(None::<String>),
                        $jobs::lease_until.eq(0),
                    ))
                    .execute(c)?
                };
            }
            // A deployment whose attempt was cut short is due at once, not when the lease
            // would have ended (while an attempt runs, a job is due at the lease's end).
            let deployments = diesel::update(
                deployment_jobs::table.filter(
                    deployment_jobs::lease_owner
                        .eq(&owner)
                        .or(everyone.into_sql::<Bool>()),
                ),
            )
            .set((
                deployment_jobs::lease_owner.eq(None::<String>),
                deployment_jobs::lease_until.eq(0),
                deployment_jobs::next_attempt_at.eq(0),
            ))
            .execute(c)?;
            Ok(release!(issuance_jobs) + release!(validation_jobs) + deployments)
        })
    }
}
