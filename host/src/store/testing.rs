//! Test support: fresh databases for unit and end-to-end tests. A missing PostgreSQL fails
//! the test (it never skips), since the suite is meant to prove both backends.

use diesel::{Connection, PgConnection, RunQueryDsl};

/// Base URL of the PostgreSQL server tests create their databases on.
pub const POSTGRES_URL_ENV: &str = "ACMEGATE_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Creates a uniquely named empty database and returns its URL.
pub fn fresh_postgres_url() -> String {
    let base = std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
    let mut admin = PgConnection::establish(&base).unwrap_or_else(|e| {
        panic!("PostgreSQL is required for these tests and is not reachable at {base}: {e} (set {POSTGRES_URL_ENV})")
    });
    let name = format!("acmegate_test_{}", crate::wfe::ids::new_id());
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    // The base URL names a database (`.../postgres`); the new one replaces that last part.
    let server = base
        .rsplit_once('/')
        .map_or(base.as_str(), |(server, _)| server);
    format!("{server}/{name}")
}

/// A SQLite URL inside `dir`.
pub fn fresh_sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("acmegate.db").display())
}

/// Runs raw SQL on the store's database, as someone with direct database access could:
/// tests use it to tamper with the audit log behind the gateway's back.
pub fn execute_sql(store: &super::Store, sql: &str) -> usize {
    diesel::sql_query(sql)
        .execute(&mut *store.conn().expect("connection"))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
