//! Managed certificates: the durable schedule of the certificates the gateway renews and
//! deploys on its own (`crate::authority::managed`).
//!
//! A row is due when its `next_renewal_at` has come, it is active and nobody holds its lease.
//! The worker that claims it holds the lease while it issues and deploys, and releases it with
//! the outcome and the next due time; a process that dies mid-way leaves a lease that runs out,
//! after which any replica takes the row up again. The certificate and its sealed key are
//! stored with the row's lease checked, in the transaction that stores the certificate, so a
//! row never points at a certificate whose key it does not hold.

use diesel::prelude::*;

use super::schema::{certificates, managed_certificates as mc};
use super::{
    issue_event, Certificate, Event, ManagedCertificate, Result, Store, StoreError, MANAGED_ACTIVE,
};

/// The audit event of an admin's (or the config file's) change to managed certificate `name`.
fn managed_event(action: &'static str, name: &str, details: serde_json::Value) -> Event {
    Event::new(action, format!("managed/{name}"), details)
}

/// What the audit log keeps of a managed certificate's definition.
fn definition(row: &ManagedCertificate) -> serde_json::Value {
    serde_json::json!({
        "names": super::json_text(&row.names),
        "profile": row.profile,
        "key_type": row.key_type,
        "targets": super::json_text(&row.targets),
        "renew_at_percent": row.renew_at_percent,
        "declared": row.declared,
    })
}

impl Store {
    /// Declares `row` from the config file: inserted when new; an existing row takes the
    /// declared definition and keeps its state, certificate and schedule, except that it is
    /// due at `now` when its names, profile or key type changed (its certificate no longer
    /// matches the definition). Returns whether anything changed.
    pub fn declare_managed(&self, row: &ManagedCertificate, now: i64) -> Result<bool> {
        let row = row.clone();
        self.write_maybe_audited(move |c| {
            let old: Option<ManagedCertificate> = mc::table
                .find(&row.name)
                .select(ManagedCertificate::as_select())
                .first(c)
                .optional()?;
            let event = managed_event("managed.declare", &row.name, definition(&row));
            let Some(old) = old else {
                diesel::insert_into(mc::table).values(&row).execute(c)?;
                return Ok((true, Some(event)));
            };
            let reissue = (old.names != row.names)
                || (old.profile != row.profile)
                || (old.key_type != row.key_type);
            if !reissue
                && old.targets == row.targets
                && old.renew_at_percent == row.renew_at_percent
                && old.declared
            {
                return Ok((false, None));
            }
            let next = if reissue {
                old.next_renewal_at.min(now)
            } else {
                old.next_renewal_at
            };
            diesel::update(mc::table.find(&row.name))
                .set((
                    mc::names.eq(&row.names),
                    mc::profile.eq(&row.profile),
                    mc::key_type.eq(&row.key_type),
                    mc::targets.eq(&row.targets),
                    mc::renew_at_percent.eq(row.renew_at_percent),
                    mc::declared.eq(true),
                    mc::next_renewal_at.eq(next),
                    mc::updated_at.eq(now),
                ))
                .execute(c)?;
            Ok((true, Some(event)))
        })
    }

    /// Creates a managed certificate an admin declared. Conflict when the name is taken.
    pub fn create_managed(&self, row: &ManagedCertificate) -> Result<()> {
        let row = row.clone();
        let event = managed_event("managed.create", &row.name, definition(&row));
        self.write_audited(event, move |c| {
            diesel::insert_into(mc::table).values(&row).execute(c)?;
            Ok(())
        })
    }

    pub fn managed_certificate(&self, name: &str) -> Result<ManagedCertificate> {
        Ok(mc::table
            .find(name)
            .select(ManagedCertificate::as_select())
            .first(&mut *self.conn()?)?)
    }

    /// Every managed certificate, by name.
    pub fn managed_certificates(&self) -> Result<Vec<ManagedCertificate>> {
        Ok(mc::table
            .order(mc::name)
            .select(ManagedCertificate::as_select())
            .load(&mut *self.conn()?)?)
    }

    /// Deletes managed certificate `name` (its issued certificates stay). NotFound when there
    /// is none.
    pub fn delete_managed(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.write_maybe_audited(move |c| {
            let deleted = diesel::delete(mc::table.find(&name)).execute(c)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            Ok((
                (),
                Some(managed_event(
                    "managed.delete",
                    &name,
                    serde_json::json!({}),
                )),
            ))
        })
    }

    /// Sets managed certificate `name` to `state` (`active` or `paused`); resuming makes a row
    /// whose renewal came while it was paused due at once. Returns whether the state changed;
    /// NotFound when there is no such row.
    pub fn set_managed_state(&self, name: &str, state: &str, now: i64) -> Result<bool> {
        let (name, state) = (name.to_owned(), state.to_owned());
        self.write_maybe_audited(move |c| {
            let old: String = mc::table.find(&name).select(mc::state).first(c)?;
            if old == state {
                return Ok((false, None));
            }
            diesel::update(mc::table.find(&name))
                .set((mc::state.eq(&state), mc::updated_at.eq(now)))
                .execute(c)?;
            let event = managed_event(
                "managed.state",
                &name,
                serde_json::json!({ "from": old, "to": state }),
            );
            Ok((true, Some(event)))
        })
    }

    /// Inside a write transaction: the managed certificates whose current certificate is one
    /// of `serials` become due at `at` (or stay due earlier) and will be issued anew, because
    /// that certificate was revoked or its renewal window moved to now (incident response, an
    /// issuer retired, a key compromise): what the gateway tells ARI clients it does itself.
    /// Returns how many rows it touched.
    pub(crate) fn make_managed_due(
        c: &mut super::conn::DbConnection,
        serials: &[String],
        at: i64,
    ) -> Result<usize> {
        let mut touched = 0;
        for chunk in serials.chunks(500) {
            touched += diesel::update(
                mc::table
                    .filter(mc::certificate_serial.eq_any(chunk))
                    .filter(mc::next_renewal_at.gt(at)),
            )
            .set((
                mc::next_renewal_at.eq(at),
                mc::deployed_serial.eq(mc::certificate_serial),
                mc::updated_at.eq(at),
            ))
            .execute(c)?;
        }
        Ok(touched)
    }

    /// Makes managed certificate `name` due at `now`: the worker renews it on its next round,
    /// and issues anew even when a deployment was owed. NotFound when there is none.
    pub fn renew_managed_now(&self, name: &str, now: i64) -> Result<()> {
        let name = name.to_owned();
        self.write_maybe_audited(move |c| {
            let changed = diesel::update(mc::table.find(&name))
                .set((
                    mc::next_renewal_at.eq(now),
                    // Nothing counts as deployed: the next round issues a new certificate.
                    mc::deployed_serial.eq(mc::certificate_serial),
                    mc::updated_at.eq(now),
                ))
                .execute(c)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok((
                (),
                Some(managed_event("managed.renew", &name, serde_json::json!({}))),
            ))
        })
    }

    /// Leases up to `limit` active managed certificates due at `now` and held by nobody (or by
    /// a process whose lease ran out) to `owner` until `lease_until`.
    pub fn claim_due_managed(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ManagedCertificate>> {
        let due: Vec<ManagedCertificate> = mc::table
            .filter(mc::state.eq(MANAGED_ACTIVE))
            .filter(mc::next_renewal_at.le(now))
            .filter(mc::lease_until.le(now))
            .order(mc::next_renewal_at)
            .limit(limit)
            .select(ManagedCertificate::as_select())
            .load(&mut *self.conn()?)?;
        let who = owner.to_owned();
        self.claim_each(
            due,
            |row| {
                let (name, old_until, who) = (row.name.clone(), row.lease_until, who.clone());
                move |c: &mut super::conn::DbConnection| {
                    Ok(
                        diesel::update(mc::table.find(&name).filter(mc::lease_until.eq(old_until)))
                            .set((mc::lease_owner.eq(&who), mc::lease_until.eq(lease_until)))
                            .execute(c)?,
                    )
                }
            },
            |row| ManagedCertificate {
                lease_owner: Some(owner.to_owned()),
                lease_until,
                ..row
            },
        )
    }

    /// Stores `cert`, issued for managed certificate `name`, and makes it the row's current
    /// certificate with `sealed_key`, due for renewal at `renew_at`, in one audited transaction. Only the lease holder
    /// `owner` may: Conflict (nothing stored) when the row is no longer `owner`'s.
    pub fn store_managed_certificate(
        &self,
        name: &str,
        owner: &str,
        cert: &Certificate,
        sealed_key: &str,
        renew_at: i64,
        now: i64,
    ) -> Result<()> {
        let (name, owner, cert, sealed) = (
            name.to_owned(),
            owner.to_owned(),
            cert.clone(),
            sealed_key.to_owned(),
        );
        self.write_audited(issue_event(&cert), move |c| {
            diesel::insert_into(certificates::table)
                .values(&cert)
                .execute(c)?;
            let held = diesel::update(mc::table.find(&name).filter(mc::lease_owner.eq(&owner)))
                .set((
                    mc::certificate_serial.eq(&cert.serial),
                    mc::sealed_key.eq(&sealed),
                    mc::renew_at.eq(renew_at),
                    mc::updated_at.eq(now),
                ))
                .execute(c)?;
            if held == 0 {
                return Err(StoreError::Conflict(format!(
                    "managed certificate {name:?} is no longer leased to this process"
                )));
            }
            Ok(())
        })
    }

    /// Records the outcome of a round on `row` (its deployed serial, last deployment,
    /// failures, last error and next due time as given) and releases the lease. Only the
    /// lease holder `owner` may; returns whether it did.
    pub fn finish_managed(&self, row: &ManagedCertificate, owner: &str, now: i64) -> Result<bool> {
        let (row, owner) = (row.clone(), owner.to_owned());
        self.write(move |c| {
            Ok(
                diesel::update(mc::table.find(&row.name).filter(mc::lease_owner.eq(&owner)))
                    .set((
                        mc::next_renewal_at.eq(row.next_renewal_at),
                        mc::deployed_serial.eq(&row.deployed_serial),
                        mc::last_deployment.eq(&row.last_deployment),
                        mc::failures.eq(row.failures),
                        mc::last_error.eq(&row.last_error),
                        mc::lease_owner.eq(None::<String>),
                        mc::lease_until.eq(0),
                        mc::updated_at.eq(now),
                    ))
                    .execute(c)?
                    == 1,
            )
        })
    }
}
