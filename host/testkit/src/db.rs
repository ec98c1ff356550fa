//! Databases for tests: a uniquely named PostgreSQL database or a SQLite file per test, and raw
//! SQL on either, as someone with direct database access could run it.

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};

/// Base URL of the PostgreSQL server tests create their databases on.
pub const POSTGRES_URL_ENV: &str = "ACMEGATE_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Creates a uniquely named empty database and returns its URL.
pub fn fresh_postgres_url() -> String {
    let base = std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
    let mut admin = PgConnection::establish(&base).unwrap_or_else(|e| {
        panic!("PostgreSQL is required for these tests and is not reachable at {base}: {e} (set {POSTGRES_URL_ENV})")
    });
    let mut suffix = [0u8; 10];
    rand::fill(&mut suffix);
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("acmegate_test_{suffix}");
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

/// Runs `sql` on the database at `url` (as the gateway's `database_url` names it) over a
/// connection of its own, and returns the rows it changed: tests use it to tamper with the
/// database behind the gateway's back.
pub fn execute_sql(url: &str, sql: &str) -> usize {
    let run = |result: diesel::QueryResult<usize>| result.unwrap_or_else(|e| panic!("{sql}: {e}"));
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut c = SqliteConnection::establish(path)
                .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
            // The gateway may be writing: wait for its lock as it waits for ours.
            run(diesel::sql_query("PRAGMA busy_timeout = 5000").execute(&mut c));
            run(diesel::sql_query(sql).execute(&mut c))
        }
        None => {
            let mut c = PgConnection::establish(url)
                .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
            run(diesel::sql_query(sql).execute(&mut c))
        }
    }
}
