//! Which CA a database belongs to (`ca_pin`, one row): see `crate::server::open_pki`.

use diesel::prelude::*;

use super::schema::ca_pin;
use super::{Result, Store, StoreError};

/// The CA a database is pinned to, by certificate fingerprints (SHA-256, lower-case hex).
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = ca_pin)]
pub struct CaPin {
    pub root_sha256: String,
    pub intermediate_sha256: String,
    pub pinned_at: i64,
}

impl Store {
    /// The CA this database is pinned to, if a gateway has started on it.
    pub fn ca_pin(&self) -> Result<Option<CaPin>> {
        Ok(ca_pin::table
            .find(1)
            .select(CaPin::as_select())
            .first(&mut *self.conn()?)
            .optional()?)
    }

    /// Pins the database to `pin` unless it is pinned already; returns the pin that holds
    /// (`pin`, or the one an earlier or concurrent gateway wrote).
    pub fn pin_ca(&self, pin: &CaPin) -> Result<CaPin> {
        if let Some(held) = self.ca_pin()? {
            return Ok(held);
        }
        let row = pin.clone();
        let inserted = self.write(move |c| {
            diesel::insert_into(ca_pin::table)
                .values((
                    ca_pin::id.eq(1),
                    ca_pin::root_sha256.eq(&row.root_sha256),
                    ca_pin::intermediate_sha256.eq(&row.intermediate_sha256),
                    ca_pin::pinned_at.eq(row.pinned_at),
                ))
                .execute(c)?;
            Ok(())
        });
        match inserted {
            // Another gateway pinned first: its pin holds.
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(self.ca_pin()?.unwrap_or_else(|| pin.clone()))
    }
}
