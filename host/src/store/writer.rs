//! Group commit for SQLite: one thread owns the only writing connection and commits the
//! writes of many concurrent requests in one transaction, each in its own savepoint.
//!
//! With `synchronous=FULL` every commit waits for the disk; one commit per request would cap a
//! busy gateway at the disk's flush rate. Batching keeps every write durable before its caller
//! is answered while paying one flush per batch. A failing write rolls back its own savepoint
//! only; the rest of the batch commits.

use std::sync::mpsc::{self, Receiver, SyncSender};

use diesel::Connection;

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
/// A write, given the batch's connection and the audit chain's end as the batch has moved it.
type Job = Box<dyn FnOnce(&mut DbConnection, &mut Tail) -> Deliver + Send>;

/// Handle on the writer thread.
pub struct Writer {
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub fn start(conn: DbConnection) -> Result<Writer, StoreError> {
        let (jobs, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("acmegate-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` in the next batch and returns its result once the batch is committed.
    pub fn submit<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &mut Tail) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<Result<T, StoreError>>(1);
        let job: Job = Box::new(move |conn: &mut DbConnection, tail: &mut Tail| {
            // A nested diesel transaction is a savepoint: this job's failure undoes only it,
            // its audit entries with it.
            let before = tail.clone();
            let result = conn.transaction(|c| f(c, tail));
            if result.is_err() {
                *tail = before;
            }
            Box::new(move |commit_error: Option<&str>| {
                let outcome = match (commit_error, result) {
                    (Some(e), _) => Err(StoreError::Database(format!("commit failed: {e}"))),
                    (None, r) => r,
                };
                let _ = tx.send(outcome);
            }) as Deliver
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Database("the writer thread has stopped".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Database("the writer thread has stopped".into()))?
    }
}

fn run(mut conn: DbConnection, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut delivers = Vec::with_capacity(batch.len());
        let mut tail = Tail::default();
        let committed = conn.transaction(|c| {
            for job in batch.drain(..) {
                delivers.push(job(c, &mut tail));
            }
            tail.save(c)
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
