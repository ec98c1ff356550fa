//! Connections: one `MultiConnection` over SQLite and PostgreSQL, the r2d2 pool with the
//! per-connection SQLite settings, and the embedded migrations.

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, PooledConnection};
use diesel::{PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::StoreError;

/// The PostgreSQL advisory lock key replicas take while migrating ("acmegate" in ASCII).
const MIGRATION_LOCK: i64 = 0x6163_6d65_6761_7465;

/// The one SQL directory, shared by both backends.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// SQLite allows one writer at a time; more pooled connections only add readers. Eight keeps
/// reads concurrent on small machines without holding many file handles.
const SQLITE_POOL_SIZE: u32 = 8;
/// PostgreSQL serves many sessions; 16 per replica leaves room for several replicas under
/// the server's default max_connections of 100.
const PG_POOL_SIZE: u32 = 16;

/// A connection to either backend; diesel generates the dispatch.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

pub type Pool = diesel::r2d2::Pool<ConnectionManager<DbConnection>>;
pub type Pooled = PooledConnection<ConnectionManager<DbConnection>>;

/// Sets SQLite's durability and concurrency pragmas on every new connection.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            // busy_timeout first, so that even switching to WAL waits for a lock instead of
            // failing while the pool opens several connections at once. WAL: readers do not
            // block the writer. synchronous=FULL: a commit is on disk before the client hears
            // of it.
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// The dedicated connection of the SQLite writer thread, with the same settings as the pool's.
pub fn sqlite_writer(path: &str) -> Result<DbConnection, StoreError> {
    use diesel::Connection;
    let mut conn = DbConnection::establish(path)
        .map_err(|e| StoreError::Pool(format!("cannot open {path}: {e}")))?;
    SqlitePragmas
        .on_acquire(&mut conn)
        .map_err(|e| StoreError::Pool(e.to_string()))?;
    Ok(conn)
}

/// Opens a pool for `url`; returns it, the backend's name and, for SQLite, the file path.
pub fn open(url: &str) -> Result<(Pool, &'static str, Option<String>), StoreError> {
    let (conn_url, backend, size) =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), "postgres", PG_POOL_SIZE)
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Database(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
            }
            (path.to_string(), "sqlite", SQLITE_POOL_SIZE)
        };
    let mut builder = diesel::r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(std::time::Duration::from_secs(10))
        // A broken connection surfaces as a query error anyway; testing each checkout with an
        // extra query would double the round trips of every request.
        .test_on_check_out(false);
    if backend == "sqlite" {
        // Switch a new file to WAL on one connection first: the pool opens its connections in
        // parallel, and several switching the journal mode at once find the database locked.
        drop(sqlite_writer(&conn_url)?);
        builder = builder.connection_customizer(Box::new(SqlitePragmas));
    }
    let pool = builder
        .build(ConnectionManager::<DbConnection>::new(conn_url.clone()))
        .map_err(|e| StoreError::Pool(format!("cannot open the {backend} database: {e}")))?;
    let sqlite_path = (backend == "sqlite").then_some(conn_url.clone());
    Ok((pool, backend, sqlite_path))
}

/// Applies pending migrations; idempotent.
pub fn migrate(conn: &mut DbConnection) -> Result<(), StoreError> {
    let done = match conn {
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| StoreError::Migration(e.to_string()))?,
        DbConnection::Pg(c) => {
            // Replicas starting together would otherwise run the same migration twice and
            // the second would fail; the lock makes them take turns (the second finds nothing
            // left to do). Session-level, released right after.
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .execute(c)
                .map_err(|e| StoreError::Migration(format!("migration lock: {e}")))?;
            let done = c.run_pending_migrations(MIGRATIONS).map(|v| v.len());
            let unlocked =
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    .execute(c);
            let done = done.map_err(|e| StoreError::Migration(e.to_string()))?;
            unlocked.map_err(|e| StoreError::Migration(format!("migration unlock: {e}")))?;
            done
        }
    };
    if done > 0 {
        tracing::info!(migrations = done, "database migrated");
    }
    Ok(())
}
