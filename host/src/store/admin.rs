//! Listings for the admin API: filtered, newest first, paged by offset with a total count so
//! that operators see how much there is.

use diesel::prelude::*;

use super::conn::DbConnection;
use super::model::{Account, Certificate, Order};
use super::schema::{accounts, certificates, orders};
use super::{Result, Store};
use crate::acme::{AccountStatus, CertificateStatus, OrderStatus};

pub(super) type Backend = <DbConnection as diesel::Connection>::Backend;

/// One page of a listing and the number of rows matching the filter.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// Offset and size of a page.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub offset: i64,
    pub limit: i64,
}

impl PageRequest {
    /// The first `limit` items.
    pub fn first(limit: i64) -> Self {
        Self { offset: 0, limit }
    }
}

/// Which certificates a listing shows; unset fields match everything.
#[derive(Clone, Debug, Default)]
pub struct CertificateFilter {
    /// A substring of an identifier or of the subject common name.
    pub name: Option<String>,
    pub serial: Option<String>,
    pub status: Option<CertificateStatus>,
    /// Only certificates whose notAfter is before this (Unix seconds).
    pub expiring_before: Option<i64>,
    /// "acme", "admin" or "identity".
    pub origin: Option<String>,
    /// The issuer that signed it: "builtin" or an issuer plugin's name.
    pub issuer: Option<String>,
    /// Only certificates still valid at this time (notAfter after it).
    pub valid_at: Option<i64>,
}

/// Which orders a listing shows.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub account_id: Option<String>,
    pub status: Option<OrderStatus>,
}

/// `LIKE` pattern matching `text` anywhere, with the wildcards in it taken literally.
pub(super) fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn certificate_query(f: &CertificateFilter) -> certificates::BoxedQuery<'static, Backend> {
    let mut q = certificates::table.into_boxed();
    if let Some(name) = &f.name {
        let pattern = contains_pattern(name);
        q = q.filter(
            certificates::identifiers
                .like(pattern.clone())
                .escape('\\')
                .or(certificates::subject.like(pattern).escape('\\')),
        );
    }
    if let Some(serial) = &f.serial {
        q = q.filter(certificates::serial.eq(serial.to_ascii_lowercase()));
    }
    if let Some(status) = &f.status {
        q = q.filter(certificates::status.eq(*status));
    }
    if let Some(before) = f.expiring_before {
        q = q.filter(certificates::not_after.lt(before));
    }
    if let Some(t) = f.valid_at {
        q = q.filter(certificates::not_after.gt(t));
    }
    if let Some(origin) = &f.origin {
        q = q.filter(certificates::origin.eq(origin.clone()));
    }
    if let Some(issuer) = &f.issuer {
        q = q.filter(certificates::issuer.eq(issuer.clone()));
    }
    q
}

fn order_query(f: &OrderFilter) -> orders::BoxedQuery<'static, Backend> {
    let mut q = orders::table.into_boxed();
    if let Some(account) = &f.account_id {
        q = q.filter(orders::account_id.eq(account.clone()));
    }
    if let Some(status) = &f.status {
        q = q.filter(orders::status.eq(*status));
    }
    q
}

impl Store {
    pub fn list_accounts(
        &self,
        status: Option<AccountStatus>,
        page: PageRequest,
    ) -> Result<Page<Account>> {
        let query = || {
            let mut q = accounts::table.into_boxed::<Backend>();
            if let Some(status) = status {
                q = q.filter(accounts::status.eq(status));
            }
            q
        };
        let c = &mut *self.conn()?;
        let total = query().count().get_result(c)?;
        let items = query()
            .select(Account::as_select())
            .order((accounts::created_at.desc(), accounts::id.desc()))
            .offset(page.offset)
            .limit(page.limit)
            .load(c)?;
        Ok(Page { items, total })
    }

    /// How many orders each of `accounts` has (an account without any is left out): one
    /// grouped count over the `orders_by_account` index, cheap for a page of a listing.
    pub fn order_counts(&self, accounts: &[String]) -> Result<Vec<(String, i64)>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let c = &mut *self.conn()?;
        Ok(orders::table
            .filter(orders::account_id.eq_any(accounts))
            .group_by(orders::account_id)
            .select((orders::account_id, diesel::dsl::count_star()))
            .load(c)?)
    }

    pub fn list_orders(&self, filter: &OrderFilter, page: PageRequest) -> Result<Page<Order>> {
        let c = &mut *self.conn()?;
        let total = order_query(filter).count().get_result(c)?;
        let items = order_query(filter)
            .select(Order::as_select())
            .order((orders::created_at.desc(), orders::id.desc()))
            .offset(page.offset)
            .limit(page.limit)
            .load(c)?;
        Ok(Page { items, total })
    }

    pub fn list_certificates(
        &self,
        filter: &CertificateFilter,
        page: PageRequest,
    ) -> Result<Page<Certificate>> {
        let c = &mut *self.conn()?;
        let total = certificate_query(filter).count().get_result(c)?;
        let items = certificate_query(filter)
            .select(Certificate::as_select())
            .order((certificates::created_at.desc(), certificates::id.desc()))
            .offset(page.offset)
            .limit(page.limit)
            .load(c)?;
        Ok(Page { items, total })
    }
}

impl Store {
    /// Unrevoked certificates whose notAfter is after `from` and at most `until`: the
    /// candidates for expiry notices.
    pub fn certificates_expiring(&self, from: i64, until: i64) -> Result<Vec<Certificate>> {
        Ok(certificates::table
            .filter(certificates::status.eq(CertificateStatus::Valid))
            .filter(certificates::not_after.gt(from))
            .filter(certificates::not_after.le(until))
            .select(Certificate::as_select())
            .order(certificates::not_after.asc())
            .load(&mut *self.conn()?)?)
    }

    /// Records that notifiers were told `serial` expires within `days`, unless a notice for
    /// `days` or fewer was recorded already. Returns whether this call recorded it: the one
    /// caller (of all replicas) that gets `true` sends the notice.
    pub fn record_expiry_notice(&self, serial: &str, days: i32, now: i64) -> Result<bool> {
        use super::schema::expiry_notices;
        let serial = serial.to_owned();
        let recorded = self.write_maybe_audited(move |c| {
            let event = || {
                Some(super::Event::new(
                    "certificate.expiry_notice",
                    format!("certificate/{serial}"),
                    serde_json::json!({ "days": days }),
                ))
            };
            let lowered = diesel::update(
                expiry_notices::table
                    .find(&serial)
                    .filter(expiry_notices::days.gt(days)),
            )
            .set((
                expiry_notices::days.eq(days),
                expiry_notices::sent_at.eq(now),
            ))
            .execute(c)?;
            if lowered == 1 {
                return Ok((true, event()));
            }
            let known: i64 = expiry_notices::table.find(&serial).count().get_result(c)?;
            if known > 0 {
                return Ok((false, None));
            }
            diesel::insert_into(expiry_notices::table)
                .values((
                    expiry_notices::serial.eq(&serial),
                    expiry_notices::days.eq(days),
                    expiry_notices::sent_at.eq(now),
                ))
                .execute(c)?;
            Ok((true, event()))
        });
        match recorded {
            // Another replica inserted the first notice at the same moment; it sends it.
            Err(super::StoreError::Conflict(_)) => Ok(false),
            other => other,
        }
    }
}

impl Store {
    /// Whether a certificate other than `serial` was issued before for exactly these
    /// identifiers to the same account (or, for `None`, outside ACME): what makes an issuance a
    /// renewal for the notifiers.
    pub fn is_renewal(
        &self,
        account_id: Option<&str>,
        identifiers: &str,
        serial: &str,
    ) -> Result<bool> {
        let mut q = certificates::table
            .filter(certificates::identifiers.eq(identifiers.to_owned()))
            .filter(certificates::serial.ne(serial.to_owned()))
            .into_boxed::<Backend>();
        q = match account_id {
            Some(id) => q.filter(certificates::account_id.eq(id.to_owned())),
            None => q.filter(certificates::account_id.is_null()),
        };
        let earlier: i64 = q.count().get_result(&mut *self.conn()?)?;
        Ok(earlier > 0)
    }
}

/// What the overview shows of the certificates and orders, counted in the database so that it
/// costs the same with ten certificates or ten thousand.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Overview {
    /// Not revoked and not yet expired.
    pub valid: i64,
    /// Not revoked, notAfter passed.
    pub expired: i64,
    pub revoked: i64,
    /// notAfter of the valid certificates that expire between now and the horizon, ascending.
    pub expiring: Vec<i64>,
    /// Certificates issued, and orders that failed (became invalid), since each `since`.
    pub issued_since: Vec<i64>,
    pub failed_since: Vec<i64>,
}

impl Store {
    /// Counts for the overview at `now`: certificates by state, the notAfter of those expiring
    /// before `horizon`, and issuances and failed orders since each time in `since`.
    pub fn overview(&self, now: i64, horizon: i64, since: &[i64]) -> Result<Overview> {
        let c = &mut *self.conn()?;
        let valid_status =
            || certificates::table.filter(certificates::status.eq(CertificateStatus::Valid));
        let valid = valid_status()
            .filter(certificates::not_after.gt(now))
            .count()
            .get_result(c)?;
        let expired = valid_status()
            .filter(certificates::not_after.le(now))
            .count()
            .get_result(c)?;
        let revoked = certificates::table
            .filter(certificates::status.eq(CertificateStatus::Revoked))
            .count()
            .get_result(c)?;
        let expiring = valid_status()
            .filter(certificates::not_after.gt(now))
            .filter(certificates::not_after.le(horizon))
            .select(certificates::not_after)
            .order(certificates::not_after.asc())
            .load(c)?;
        let mut issued_since = Vec::with_capacity(since.len());
        let mut failed_since = Vec::with_capacity(since.len());
        for &t in since {
            issued_since.push(
                certificates::table
                    .filter(certificates::created_at.ge(t))
                    .count()
                    .get_result(c)?,
            );
            failed_since.push(
                orders::table
                    // Pending and ready orders past their expiry are invalid (RFC 8555
                    // §7.1.6) though stored as they were: their client never came back.
                    .filter(
                        orders::status
                            .eq(OrderStatus::Invalid)
                            .or(orders::status
                                .eq(OrderStatus::Pending)
                                .and(orders::expires.le(now)))
                            .or(orders::status
                                .eq(OrderStatus::Ready)
                                .and(orders::expires.le(now))),
                    )
                    .filter(orders::created_at.ge(t))
                    .count()
                    .get_result(c)?,
            );
        }
        Ok(Overview {
            valid,
            expired,
            revoked,
            expiring,
            issued_since,
            failed_since,
        })
    }
}
