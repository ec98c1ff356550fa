//! Nonces redeemed across replicas (`crate::nonce::Nonces::Shared`): one row per nonce used,
//! kept until it would have expired.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::schema::redeemed_nonces;
use super::{Result, Store};

impl Store {
    /// Records `nonce` as redeemed until `expires_at`; false when some process redeemed it
    /// before. One autocommitted insert: the primary key decides between racing replicas.
    pub fn redeem_nonce(&self, nonce: &str, expires_at: i64) -> Result<bool> {
        let inserted = diesel::insert_into(redeemed_nonces::table)
            .values((
                redeemed_nonces::nonce.eq(nonce),
                redeemed_nonces::expires_at.eq(expires_at),
            ))
            .execute(&mut *self.conn()?);
        match inserted {
            Ok(_) => Ok(true),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets redeemed nonces that expired before `now` (they are refused as expired anyway).
    pub fn prune_redeemed_nonces(&self, now: i64) -> Result<usize> {
        Ok(
            diesel::delete(redeemed_nonces::table.filter(redeemed_nonces::expires_at.lt(now)))
                .execute(&mut *self.conn()?)?,
        )
    }
}
