//! Group commit for SQLite: one thread owns the only writing connection and commits the
//! writes of many concurrent requests in one transaction, each in its own savepoint.
//!
//! With `synchronous=FULL` every commit waits for the disk; one commit per request would cap a
//! busy gateway at the disk's flush rate. Batching keeps every write durable before its caller
//! is answered while paying one flush per batch. A failing write rolls back its own savepoint
//! only; the rest of the batch commits.
//!
//! Two ways in: [`Writer::submit`] hands one write to the thread and blocks until its batch
//! has committed; [`Writer::run`] runs a whole store call *on* the thread, inside its next
//! batch, and answers an async caller once that batch has committed. The second is how a
//! request's write reaches the writer without a blocking-pool thread parked in between (two
//! thread wake-ups fewer per write): the call's writes find themselves on the writer thread
//! and run in place, each in its own savepoint, as if submitted.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use diesel::connection::{Connection, TransactionManager};

use super::audit::Tail;
use super::conn::DbConnection;
use super::StoreError;

/// Writes per transaction at most: bounds the latency a batch adds to its first member.
const MAX_BATCH: usize = 256;
/// Writes waiting at most; callers block beyond that (backpressure instead of memory growth).
const QUEUE_DEPTH: usize = 4096;

/// What a job leaves to do once the batch's fate is known: deliver its result, or the commit
/// error if the batch failed to commit.
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;
/// A job, run on the writer thread inside a batch's transaction.
type Job = Box<dyn FnOnce() -> Deliver + Send>;

thread_local! {
    /// Which writer this thread is, if it is one (0: none): a store call running on a writer
    /// thread may still write through another store (tests open several), whose writes must
    /// go to that store's own thread.
    static WRITER_ID: Cell<u64> = const { Cell::new(0) };
    /// The writer thread's connection and the audit chain's end as its current batch has moved
    /// it. Borrowed by one write at a time, never across a job, so a store call running on
    /// the thread can reach it for each of its writes.
    static BATCH: RefCell<Option<(DbConnection, Tail)>> = const { RefCell::new(None) };
}

/// Ids of writers, so that a thread knows whose it is; 0 is no writer.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Handle on the writer thread.
pub struct Writer {
    jobs: SyncSender<Job>,
    id: u64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

fn stopped() -> StoreError {
    StoreError::Database("the writer thread has stopped".into())
}

/// The result of a job whose batch ended with `commit_error` (`None`: committed).
fn outcome<T>(commit_error: Option<&str>, result: Result<T, StoreError>) -> Result<T, StoreError> {
    match commit_error {
        Some(e) => Err(StoreError::Database(format!("commit failed: {e}"))),
        None => result,
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub fn start(conn: DbConnection) -> Result<Writer, StoreError> {
        let (jobs, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        std::thread::Builder::new()
            .name("acmegate-sqlite-writer".into())
            .spawn(move || run(id, conn, rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs, id })
    }

    /// Runs `f` in the next batch and returns its result once the batch is committed. On the
    /// writer thread itself (a call given to [`Writer::run`]) it runs at once, in the batch
    /// under way, and its result stands or falls with that batch.
    pub fn submit<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &mut Tail) -> Result<T, StoreError> + Send + 'static,
    {
        if WRITER_ID.get() == self.id {
            return in_savepoint(f);
        }
        let (tx, rx) = mpsc::sync_channel::<Result<T, StoreError>>(1);
        let job: Job = Box::new(move || {
            let result = in_savepoint(f);
            Box::new(move |commit_error| {
                let _ = tx.send(outcome(commit_error, result));
            })
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())?
    }

    /// Runs `f` on the writer thread inside its next batch, its writes each in a savepoint of
    /// it, and answers once the batch has committed. For short store calls only: every other
    /// write waits while `f` runs.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err(StoreError::Database("store call panicked".into())));
            Box::new(move |commit_error| {
                // The caller may have gone (a dropped request); its answer is then not needed.
                let _ = tx.send(outcome(commit_error, result));
            })
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
            // A full queue: wait for room off the async executor.
            Err(TrySendError::Full(job)) => {
                let jobs = self.jobs.clone();
                tokio::task::spawn_blocking(move || jobs.send(job))
                    .await
                    .map_err(|_| stopped())?
                    .map_err(|_| stopped())?;
            }
        }
        rx.await.map_err(|_| stopped())?
    }
}

/// Runs `f` in a savepoint of the writer thread's batch. A failure rolls back the savepoint
/// and puts the audit chain's end back where it was, so the write leaves no trace; so does a
/// panic, which answers an error instead of taking the writer thread down.
fn in_savepoint<T>(
    f: impl FnOnce(&mut DbConnection, &mut Tail) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    BATCH.with(|batch| {
        let mut batch = batch
            .try_borrow_mut()
            .map_err(|_| StoreError::Database("a write inside a write of the writer".into()))?;
        let (conn, tail) = batch.as_mut().ok_or_else(stopped)?;
        let before = tail.clone();
        // A nested diesel transaction is a savepoint.
        let result = catch_unwind(AssertUnwindSafe(|| conn.transaction(|c| f(c, tail))))
            .unwrap_or_else(|_| {
                close_savepoints(conn);
                Err(StoreError::Database("store write panicked".into()))
            });
        if result.is_err() {
            *tail = before;
        }
        result
    })
}

/// Rolls back the savepoints a panic left open, down to the batch's own transaction.
fn close_savepoints(conn: &mut DbConnection) {
    while let Ok(Some(depth)) = Tm::transaction_manager_status_mut(conn).transaction_depth() {
        if depth.get() <= 1 || Tm::rollback_transaction(conn).is_err() {
            break;
        }
    }
}

fn run(id: u64, conn: DbConnection, rx: Receiver<Job>) {
    WRITER_ID.set(id);
    BATCH.set(Some((conn, Tail::default())));
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = with_batch(|conn, tail| {
            *tail = Tail::default();
            Tm::begin_transaction(conn)
        });
        if let Err(e) = began {
            tracing::error!(error = %e, writes = batch.len(), "SQLite batch could not begin");
            // Dropping the jobs unrun tells each caller the write did not happen.
            continue;
        }
        let delivers: Vec<Deliver> = batch.into_iter().map(|job| job()).collect();
        let committed = with_batch(|conn, tail| match tail.save(conn) {
            Ok(()) => Tm::commit_transaction(conn).map_err(StoreError::from),
            Err(e) => {
                let _ = Tm::rollback_transaction(conn);
                Err(e)
            }
        });
        let error = committed.err().map(|e| e.to_string());
        if let Some(e) = &error {
            tracing::error!(error = %e, writes = delivers.len(), "SQLite batch commit failed");
        }
        for deliver in delivers {
            deliver(error.as_deref());
        }
    }
}

type Tm = <DbConnection as Connection>::TransactionManager;

/// `f` on the writer thread's connection and tail, between jobs.
fn with_batch<T, E: Into<StoreError>>(
    f: impl FnOnce(&mut DbConnection, &mut Tail) -> Result<T, E>,
) -> Result<T, StoreError> {
    BATCH.with_borrow_mut(|batch| {
        let (conn, tail) = batch.as_mut().ok_or_else(stopped)?;
        f(conn, tail).map_err(Into::into)
    })
}
