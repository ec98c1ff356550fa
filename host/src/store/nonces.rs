//! Nonces redeemed across replicas (`crate::nonce::Nonces::Sealed`): one row per nonce used,
//! kept until it would have expired.
//!
//! On PostgreSQL a redemption commits without waiting for the disk (`synchronous_commit` off
//! for its own transaction only). Nothing is lost by that: the write-ahead log is flushed in
//! order, so the request that used the nonce, if it changed anything, made the redemption
//! durable with its own commit; only the redemption of a read-only request can be lost, in a
//! crash of the database, and replaying such a request shows nothing new. It saves a disk
//! flush on every ACME request.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, Text};

use super::conn::DbConnection;
use super::schema::{accounts, redeemed_nonces};
use super::{Account, Result, Store};

/// Inserts the nonce `$1`, expiring at `$2`, as a CTE named `redeemed` that yields a row when
/// the nonce was fresh. The insert reads the one-row subquery that turns off the disk wait
/// for this statement's transaction (see the module comment).
const REDEEM_CTE: &str = "WITH redeemed AS (\
       INSERT INTO redeemed_nonces (nonce, expires_at) \
       SELECT $1, $2 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit \
       ON CONFLICT DO NOTHING RETURNING 1) ";

#[derive(QueryableByName)]
struct Fresh {
    #[diesel(sql_type = Bool)]
    fresh: bool,
}

#[derive(QueryableByName)]
struct AccountAndNonce {
    #[diesel(embed)]
    account: Account,
    #[diesel(sql_type = Bool)]
    fresh: bool,
}

impl Store {
    /// Records `nonce` as redeemed until `expires_at`; false when some process redeemed it
    /// before. One autocommitted statement: the primary key decides between racing replicas.
    pub fn redeem_nonce(&self, nonce: &str, expires_at: i64) -> Result<bool> {
        let conn = &mut *self.conn()?;
        match conn {
            DbConnection::Pg(pg) => {
                let row: Fresh = diesel::sql_query(format!(
                    "{REDEEM_CTE}SELECT EXISTS (SELECT 1 FROM redeemed) AS fresh"
                ))
                .bind::<Text, _>(nonce)
                .bind::<BigInt, _>(expires_at)
                .get_result(pg)?;
                Ok(row.fresh)
            }
            DbConnection::Sqlite(_) => insert_redeemed(conn, nonce, expires_at),
        }
    }

    /// The account `id`, and whether `nonce` (valid until `expires_at`) was fresh, redeeming it:
    /// on PostgreSQL in one round trip, where every ACME request with a `kid` would otherwise
    /// pay two. The nonce is spent even when the request's signature then fails: only a client
    /// that holds the nonce can spend it so, and nonces reach only the client that asked.
    pub fn account_redeeming_nonce(
        &self,
        id: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<(Account, bool)> {
        let conn = &mut *self.conn()?;
        match conn {
            DbConnection::Pg(pg) => {
                let row: AccountAndNonce = diesel::sql_query(format!(
                    "{REDEEM_CTE}SELECT accounts.*, EXISTS (SELECT 1 FROM redeemed) AS fresh \
                     FROM accounts WHERE accounts.id = $3"
                ))
                .bind::<Text, _>(nonce)
                .bind::<BigInt, _>(expires_at)
                .bind::<Text, _>(id)
                .get_result(pg)?;
                Ok((row.account, row.fresh))
            }
            DbConnection::Sqlite(_) => {
                let fresh = insert_redeemed(conn, nonce, expires_at)?;
                let account = accounts::table
                    .find(id)
                    .select(Account::as_select())
                    .first(conn)?;
                Ok((account, fresh))
            }
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

/// The redemption as a plain insert (SQLite, where sealed nonces serve only tests).
fn insert_redeemed(conn: &mut DbConnection, nonce: &str, expires_at: i64) -> Result<bool> {
    let inserted = diesel::insert_into(redeemed_nonces::table)
        .values((
            redeemed_nonces::nonce.eq(nonce),
            redeemed_nonces::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
