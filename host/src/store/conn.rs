//! Connections: one `MultiConnection` over SQLite and PostgreSQL, the r2d2 pool with the
//! per-connection SQLite settings, and the embedded migrations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::{InstrumentationEvent, SimpleConnection};
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
pub(super) const PG_POOL_SIZE: u32 = 16;
/// Connections a pool opens ahead of demand: none. r2d2 opens them on a background thread;
/// one still inside `PQconnectdb` (OpenSSL, for `sslmode=prefer`) when a short command such as
/// `acmegate audit verify` returns met OpenSSL's exit-time cleanup and the process died of
/// SIGSEGV after printing its answer (5 runs in 40 on PostgreSQL). Opened on demand, every
/// connection is established before the call that needed it returns; idle ones stay pooled.
const MIN_IDLE: u32 = 0;

/// A connection to either backend; diesel generates the dispatch.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

pub type Pool = diesel::r2d2::Pool<ConnectionManager<DbConnection>>;
pub type Pooled = PooledConnection<ConnectionManager<DbConnection>>;

/// Statements and transactions sent to the database by every connection of one store, from
/// diesel's instrumentation: what `acmegate bench` divides by the orders of its run
/// (round trips per order, the cost the issue of performance asks to count).
#[derive(Debug, Default)]
pub struct QueryCounts {
    /// Every statement, `BEGIN` and `COMMIT` included: round trips to PostgreSQL.
    statements: AtomicU64,
    /// Top-level transactions committed.
    commits: AtomicU64,
}

impl QueryCounts {
    /// (statements, commits) so far.
    pub fn read(&self) -> (u64, u64) {
        (
            self.statements.load(Ordering::Relaxed),
            self.commits.load(Ordering::Relaxed),
        )
    }

    /// Counts `conn`'s statements and commits here from now on.
    fn instrument(self: &Arc<Self>, conn: &mut DbConnection) {
        use diesel::Connection;
        let counts = self.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                counts.statements.fetch_add(1, Ordering::Relaxed);
                // Every statement, for `ACMEGATE_LOG=acmegate::sql=trace`: how the per-order
                // statement lists of docs/performance.md were read. Without its binds, which
                // can hold secrets (an EAB key's HMAC key).
                if tracing::enabled!(target: "acmegate::sql", tracing::Level::TRACE) {
                    let text = query.to_string();
                    let sql = text.split(" -- binds: ").next().unwrap_or_default();
                    tracing::trace!(target: "acmegate::sql", "{sql}");
                }
            }
            InstrumentationEvent::CommitTransaction { depth, .. } if depth.get() == 1 => {
                counts.commits.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        });
    }
}

/// Sets up every new connection: SQLite's durability and concurrency pragmas, and the
/// statement counts.
#[derive(Debug)]
struct OnConnect {
    counts: Arc<QueryCounts>,
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for OnConnect {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        self.counts.instrument(conn);
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
pub fn sqlite_writer(path: &str, counts: &Arc<QueryCounts>) -> Result<DbConnection, StoreError> {
    use diesel::Connection;
    let mut conn = DbConnection::establish(path)
        .map_err(|e| StoreError::Pool(format!("cannot open {path}: {e}")))?;
    OnConnect {
        counts: counts.clone(),
    }
    .on_acquire(&mut conn)
    .map_err(|e| StoreError::Pool(e.to_string()))?;
    Ok(conn)
}

/// What `database_url` accepts, for errors that name the choices.
pub const SUPPORTED_DATABASE_URLS: &str =
    "sqlite://PATH, sqlite:PATH, a bare file path, postgres://... or postgresql://...";

/// The backend a database URL names and what to open. This is the one place that decides, so
/// that the configuration check and [`open`] cannot disagree.
#[derive(Debug, PartialEq, Eq)]
pub enum DatabaseUrl<'a> {
    /// A SQLite file path (`sqlite://PATH`, `sqlite:PATH` or a bare path).
    Sqlite(&'a str),
    /// A PostgreSQL connection URL, handed to libpq as it is.
    Postgres(&'a str),
}

impl<'a> DatabaseUrl<'a> {
    pub fn parse(url: &'a str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(Self::Sqlite(path));
        }
        // Anything else that opens with a URL scheme (RFC 3986 §3.1) is a database we do not
        // speak or a typo; read as a path it would silently create a SQLite file named
        // `mysql:/...`. One letter is left to paths, like a drive letter.
        match url.split_once(':') {
            Some((scheme, _))
                if scheme.len() > 1
                    && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Err(StoreError::UnsupportedUrl {
                    scheme: scheme.to_string(),
                })
            }
            _ => Ok(Self::Sqlite(url)),
        }
    }
}

/// `url` with its password replaced by `***`, for errors and logs: a database URL may carry
/// one, and secrets never go into a message.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password, and this one has one.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

/// What a PostgreSQL URL points at, in words for an error: host and port, database and user,
/// with libpq's defaults for what the URL leaves out (port 5432, the database named after the
/// user, the local socket). Never the password.
fn postgres_target(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return redacted_url(url);
    };
    let param = |name: &str| {
        parsed
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let host = param("host")
        .or_else(|| {
            parsed
                .host_str()
                .filter(|h| !h.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| "the local socket".into());
    let port = parsed.port().unwrap_or(5432);
    let user = param("user").unwrap_or_else(|| parsed.username().to_string());
    let database = param("dbname")
        .or_else(|| Some(parsed.path().trim_start_matches('/').to_string()))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    format!("{host}:{port}, database {database:?}, user {user:?}")
}

/// Opens a pool for `url` whose connections count into `counts`; returns it, the backend's
/// name and, for SQLite, the file path.
pub fn open(
    url: &str,
    counts: &Arc<QueryCounts>,
) -> Result<(Pool, &'static str, Option<String>), StoreError> {
    let (conn_url, backend, size) = match DatabaseUrl::parse(url)? {
        DatabaseUrl::Postgres(url) => {
            // The pool's MultiConnection tries each backend in turn and reports only "Invalid
            // connection url for multiconnection"; one direct connection first gets libpq's
            // reason, so a server that is down or refuses us is named at start.
            use diesel::Connection;
            PgConnection::establish(url).map_err(|e| {
                let reason = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                StoreError::Pool(format!(
                    "cannot connect to PostgreSQL at {}: {reason}",
                    postgres_target(url)
                ))
            })?;
            (url.to_string(), "postgres", PG_POOL_SIZE)
        }
        DatabaseUrl::Sqlite(path) => {
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Database(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
            }
            (path.to_string(), "sqlite", SQLITE_POOL_SIZE)
        }
    };
    let mut builder = diesel::r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(std::time::Duration::from_secs(10))
        // Connections open as load needs them, not all at start: several replicas (or a test
        // suite's many gateways) would otherwise hold `size` sessions each of PostgreSQL's 100
        // from their first second.
        .min_idle(Some(MIN_IDLE))
        // A broken connection surfaces as a query error anyway; testing each checkout with an
        // extra query would double the round trips of every request.
        .test_on_check_out(false);
    if backend == "sqlite" {
        // Switch a new file to WAL on one connection first: the pool opens its connections in
        // parallel, and several switching the journal mode at once find the database locked.
        drop(sqlite_writer(&conn_url, &Arc::default())?);
    }
    builder = builder.connection_customizer(Box::new(OnConnect {
        counts: counts.clone(),
    }));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into a shared buffer, for the log lines a test provokes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn traced_statements_are_counted_and_logged_without_their_values() {
        use diesel::sql_types::Text;
        use diesel::Connection;
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("acmegate::sql=trace")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let counts = Arc::new(QueryCounts::default());
        tracing::subscriber::with_default(subscriber, || {
            let mut conn = DbConnection::establish(":memory:").unwrap();
            counts.instrument(&mut conn);
            diesel::sql_query("SELECT ? AS secret_value")
                .bind::<Text, _>("hunter2-hmac-key")
                .execute(&mut conn)
                .unwrap();
        });
        let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("SELECT ? AS secret_value"), "{logged}");
        assert!(
            !logged.contains("hunter2"),
            "a value reached the log: {logged}"
        );
        assert_eq!(counts.read().0, 1);
    }

    #[test]
    fn database_url_names_its_backend_or_is_refused() {
        for (url, want) in [
            ("sqlite://./d/a.db", DatabaseUrl::Sqlite("./d/a.db")),
            ("sqlite:a.db", DatabaseUrl::Sqlite("a.db")),
            ("/var/lib/a.db", DatabaseUrl::Sqlite("/var/lib/a.db")),
            ("./odd:name.db", DatabaseUrl::Sqlite("./odd:name.db")),
            (
                "postgres://u@h/db",
                DatabaseUrl::Postgres("postgres://u@h/db"),
            ),
            (
                "postgresql://h/db",
                DatabaseUrl::Postgres("postgresql://h/db"),
            ),
        ] {
            assert_eq!(DatabaseUrl::parse(url).unwrap(), want, "{url}");
        }
        for (url, scheme) in [
            ("mysql://root:pw@db/acme", "mysql"),
            ("postgress://h", "postgress"),
        ] {
            match DatabaseUrl::parse(url) {
                Err(StoreError::UnsupportedUrl { scheme: got }) => assert_eq!(got, scheme),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn unreachable_postgres_is_named_with_what_was_tried() {
        // Port 1 on the loopback: nothing listens, so the refusal is immediate.
        let err = match open("postgres://acme:s3cret@127.0.0.1:1/acmedb", &Arc::default()) {
            Err(StoreError::Pool(msg)) => msg,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a pool on port 1"),
        };
        assert!(
            err.starts_with(
                "cannot connect to PostgreSQL at 127.0.0.1:1, database \"acmedb\", user \"acme\": "
            ),
            "{err}"
        );
        assert!(err.contains("Connection refused"), "{err}");
        assert!(!err.contains("s3cret") && !err.contains('\n'), "{err}");
        assert_eq!(
            postgres_target("postgresql:///?host=/run/postgresql&user=ops"),
            "/run/postgresql:5432, database \"ops\", user \"ops\""
        );
    }

    #[test]
    fn redacted_url_hides_only_the_password() {
        assert_eq!(
            redacted_url("postgres://acme:s3cret@db:5433/acme"),
            "postgres://acme:***@db:5433/acme"
        );
        assert_eq!(redacted_url("postgres://db/acme"), "postgres://db/acme");
        assert_eq!(redacted_url("./a.db"), "./a.db");
    }
}
