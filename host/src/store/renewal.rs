//! What ACME Renewal Information (RFC 9773) keeps per certificate: the order that replaces it
//! (§5), and a window moved to a moment (revocation for key compromise, an admin's renew-now).

use diesel::prelude::*;

use super::admin::{contains_pattern, Backend};
use super::audit::Event;
use super::conn::DbConnection;
use super::model::{Authorization, Certificate, Challenge, Order};
use super::schema::{authorizations, certificates, challenges, orders};
use super::{json_text, Result, Store};
use crate::acme::{CertificateStatus, OrderStatus};

/// The renewal columns of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = certificates)]
pub struct RenewalMarks {
    /// The order that replaces the certificate (RFC 9773 §5).
    pub replaced_by: Option<String>,
    /// The moment its window was moved to: from then on it reads as in the past.
    pub renew_now_at: Option<i64>,
    /// Why it was moved: [`RENEW_KEY_COMPROMISE`], [`RENEW_ADMIN`] or
    /// [`RENEW_ISSUER_RETIRED`].
    pub renew_reason: Option<String>,
    /// The page an admin named for the move, if any.
    pub renew_explanation_url: Option<String>,
}

/// A window moved because the certificate was revoked for keyCompromise.
pub const RENEW_KEY_COMPROMISE: &str = "key-compromise";
/// A window moved by an admin's renew-now.
pub const RENEW_ADMIN: &str = "admin";
/// A window moved because the certificate's issuer was retired (`issuance.retired_issuers`).
pub const RENEW_ISSUER_RETIRED: &str = "issuer-retired";

/// A certificate with its renewal columns and the order that replaces it, if any.
#[derive(Clone, Debug)]
pub struct RenewalState {
    pub certificate: Certificate,
    pub marks: RenewalMarks,
    pub replacement: Option<Order>,
}

/// Which certificates an admin's renew-now moves; unset fields match everything, and only
/// valid, unexpired certificates are moved.
#[derive(Clone, Debug, Default)]
pub struct RenewNowFilter {
    /// Certificates that name any of these identifiers (exactly, `*.` included).
    pub names: Vec<String>,
    /// Certificates with one of these serials (lower-case hex, as stored): the console's
    /// "renew now" on one certificate.
    pub serials: Vec<String>,
    /// Certificates of orders under this profile.
    pub profile: Option<String>,
    pub issuer: Option<String>,
    /// notBefore at or after this (Unix seconds).
    pub issued_after: Option<i64>,
    /// notBefore before this.
    pub issued_before: Option<i64>,
    /// Only certificates whose window nothing has moved yet: a gateway that retires the same
    /// issuer at every start moves each certificate once.
    pub unmoved_only: bool,
}

/// What a renew-now does: the filter, the moment, why, and what the window's readers are told.
#[derive(Clone, Debug)]
pub struct RenewNow {
    pub filter: RenewNowFilter,
    pub at: i64,
    /// [`RENEW_ADMIN`] or [`RENEW_ISSUER_RETIRED`]: stored, and it picks the explanation page.
    pub reason: &'static str,
    pub explanation_url: Option<String>,
}

/// Ids of valid, unexpired certificates matching `f` (every name queried alone: a handful per
/// incident, and one simple query each on both backends).
fn matching_ids(c: &mut DbConnection, f: &RenewNowFilter, now: i64) -> Result<Vec<String>> {
    let query = || {
        let mut q = certificates::table
            .filter(certificates::status.eq(CertificateStatus::Valid))
            .filter(certificates::not_after.gt(now))
            .select(certificates::id)
            .into_boxed::<Backend>();
        if let Some(profile) = &f.profile {
            q = q.filter(
                certificates::order_id.eq_any(
                    orders::table
                        .filter(orders::profile.eq(profile.clone()))
                        .select(orders::id.nullable()),
                ),
            );
        }
        if let Some(issuer) = &f.issuer {
            q = q.filter(certificates::issuer.eq(issuer.clone()));
        }
        if !f.serials.is_empty() {
            q = q.filter(certificates::serial.eq_any(f.serials.clone()));
        }
        if let Some(t) = f.issued_after {
            q = q.filter(certificates::not_before.ge(t));
        }
        if let Some(t) = f.issued_before {
            q = q.filter(certificates::not_before.lt(t));
        }
        if f.unmoved_only {
            q = q.filter(certificates::renew_now_at.is_null());
        }
        q
    };
    if f.names.is_empty() {
        return Ok(query().load(c)?);
    }
    let mut ids = std::collections::BTreeSet::new();
    for name in &f.names {
        // Identifiers are stored as serde's compact JSON, so a name is matched exactly by
        // its `"value":"<name>"` member.
        let member = serde_json::json!({ "value": name }).to_string();
        let pattern = contains_pattern(member.trim_start_matches('{').trim_end_matches('}'));
        let found: Vec<String> = query()
            .filter(certificates::identifiers.like(pattern).escape('\\'))
            .load(c)?;
        ids.extend(found);
    }
    Ok(ids.into_iter().collect())
}

/// Inserts an order with its authorizations and challenges (one transaction: the caller's).
pub(super) fn insert_order_rows(
    c: &mut DbConnection,
    order: &Order,
    authzs: &[Authorization],
    challenges: &[Challenge],
) -> Result<()> {
    diesel::insert_into(orders::table)
        .values(order)
        .execute(c)?;
    // One statement per table on PostgreSQL, where each is a round trip; SQLite runs in the
    // process (nothing to save), and the multi-backend connection has no multi-row insert
    // for it.
    if let DbConnection::Pg(pg) = c {
        if !authzs.is_empty() {
            diesel::insert_into(authorizations::table)
                .values(authzs)
                .execute(pg)?;
        }
        if !challenges.is_empty() {
            diesel::insert_into(challenges::table)
                .values(challenges)
                .execute(pg)?;
        }
        return Ok(());
    }
    for a in authzs {
        diesel::insert_into(authorizations::table)
            .values(a)
            .execute(c)?;
    }
    for ch in challenges {
        diesel::insert_into(challenges::table)
            .values(ch)
            .execute(c)?;
    }
    Ok(())
}

/// The audit event of a new order; `replaces_serial` is the certificate it replaces.
pub(super) fn order_event(order: &Order, replaces_serial: Option<&str>) -> Event {
    let mut details = serde_json::json!({
        "account": order.account_id,
        "identifiers": json_text(&order.identifiers),
        "profile": order.profile,
    });
    if let Some(serial) = replaces_serial {
        details["replaces"] = serde_json::Value::from(serial);
    }
    Event::new("order.create", format!("order/{}", order.id), details)
}

impl Store {
    /// The certificate with `serial`, its renewal columns and its replacing order.
    pub fn renewal_state(&self, serial: &str) -> Result<RenewalState> {
        let c = &mut *self.conn()?;
        let (certificate, marks) = certificates::table
            .filter(certificates::serial.eq(serial))
            .select((Certificate::as_select(), RenewalMarks::as_select()))
            .first(c)?;
        let replacement = match &marks.replaced_by {
            Some(id) => orders::table
                .find(id)
                .select(Order::as_select())
                .first(c)
                .optional()?,
            None => None,
        };
        Ok(RenewalState {
            certificate,
            marks,
            replacement,
        })
    }

    /// newOrder with `replaces` (RFC 9773 §5): in one transaction, marks the certificate
    /// `replaced_cert` (by id) as replaced by `order` and inserts the order. Returns false,
    /// changing nothing, when a live order (`acme::renewal::replacement_is_live` at `now`)
    /// replaces it already; the mark is a compare-and-set, so of two racing orders (or
    /// replicas) one wins.
    pub fn insert_replacing_order(
        &self,
        order: &Order,
        authzs: &[Authorization],
        challenges: &[Challenge],
        replaced_cert: &str,
        now: i64,
    ) -> Result<bool> {
        let (order, authzs, challenges) = (order.clone(), authzs.to_vec(), challenges.to_vec());
        let cert_id = replaced_cert.to_owned();
        self.write_maybe_audited(move |c| {
            let (serial, previous): (String, Option<String>) = certificates::table
                .find(&cert_id)
                .select((certificates::serial, certificates::replaced_by))
                .first(c)?;
            if let Some(previous) = &previous {
                let live = orders::table
                    .find(previous)
                    .select((orders::status, orders::expires))
                    .first::<(OrderStatus, i64)>(c)
                    .optional()?
                    .is_some_and(|(status, expires)| {
                        crate::acme::renewal::replacement_is_live(status, expires, now)
                    });
                if live {
                    return Ok((false, None));
                }
            }
            let target = certificates::table.find(&cert_id);
            let marked = match &previous {
                None => diesel::update(target.filter(certificates::replaced_by.is_null()))
                    .set(certificates::replaced_by.eq(&order.id))
                    .execute(c)?,
                Some(p) => diesel::update(target.filter(certificates::replaced_by.eq(p)))
                    .set(certificates::replaced_by.eq(&order.id))
                    .execute(c)?,
            };
            if marked == 0 {
                return Ok((false, None));
            }
            insert_order_rows(c, &order, &authzs, &challenges)?;
            Ok((true, Some(order_event(&order, Some(&serial)))))
        })
    }

    /// A renew-now: moves the window of every valid, unexpired certificate matching the filter
    /// to `at`, audited as one entry naming the reason, the filter and every serial. Returns
    /// the serials moved. An admin's request is audited even when it matched nothing (it was
    /// made); a retirement that found nothing left to move leaves no entry.
    pub fn renew_now(&self, request: &RenewNow) -> Result<Vec<String>> {
        let request = request.clone();
        self.write_maybe_audited(move |c| {
            let ids = matching_ids(c, &request.filter, request.at)?;
            let mut serials = Vec::with_capacity(ids.len());
            // Bounded IN lists: PostgreSQL and SQLite both cap bind parameters.
            for chunk in ids.chunks(500) {
                diesel::update(certificates::table.filter(certificates::id.eq_any(chunk)))
                    .set((
                        certificates::renew_now_at.eq(Some(request.at)),
                        certificates::renew_reason.eq(Some(request.reason)),
                        certificates::renew_explanation_url.eq(&request.explanation_url),
                    ))
                    .execute(c)?;
                let moved: Vec<String> = certificates::table
                    .filter(certificates::id.eq_any(chunk))
                    .select(certificates::serial)
                    .load(c)?;
                serials.extend(moved);
            }
            serials.sort();
            Store::make_managed_due(c, &serials, request.at)?;
            if serials.is_empty() && request.reason != RENEW_ADMIN {
                return Ok((serials, None));
            }
            let f = &request.filter;
            let event = Event::new(
                "certificate.renew_now",
                "certificates",
                serde_json::json!({
                    "reason": request.reason,
                    "filter": {
                        "names": f.names,
                        "serials": f.serials,
                        "profile": f.profile,
                        "issuer": f.issuer,
                        "issued_after": f.issued_after,
                        "issued_before": f.issued_before,
                        "unmoved_only": f.unmoved_only,
                    },
                    "explanation_url": request.explanation_url,
                    "count": serials.len(),
                    "serials": serials,
                }),
            );
            Ok((serials, Some(event)))
        })
    }
}
