//! The threads a PostgreSQL store's calls run on: as many as the store has connections, fed by
//! one queue.
//!
//! Every store method blocks, and on PostgreSQL every one waits for network round trips. Run
//! on tokio's blocking pool, the calls spread over as many threads as were ever busy at once
//! (up to 512): each burst that found them all busy added one, with its stack and its share of
//! glibc's arenas, and the gateway's memory rose in steps with the thread count for twenty
//! minutes and more (docs/performance.md). A call can do nothing without one of the pool's
//! connections, so threads beyond the connections only wait for one; a fixed set of threads,
//! one per connection, does the same work with memory that stops growing once each has run.
//!
//! SQLite keeps the blocking pool for its other calls: a write there waits for the writer
//! thread's group commit, which commits more writes per disk flush the more of them wait at
//! once, so bounding the waiting threads would bound the batches. A request's writes skip the
//! pool altogether: they run on the writer thread (`Store::call_batched`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use crossbeam_channel::{Receiver, Sender};

use super::StoreError;

type Job = Box<dyn FnOnce() + Send>;

/// Handle on the threads; they stop when the last handle is dropped and the queue is empty.
pub struct Workers {
    jobs: Sender<Job>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").finish_non_exhaustive()
    }
}

impl Workers {
    /// Starts `count` threads named `acmegate-db-N`.
    pub fn start(count: u32) -> Result<Workers, StoreError> {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        for n in 0..count {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("acmegate-db-{n}"))
                .spawn(move || run(rx))
                .map_err(|e| {
                    StoreError::Database(format!("cannot start the store's threads: {e}"))
                })?;
        }
        Ok(Workers { jobs })
    }

    /// Runs `f` on one of the threads and returns its result. A call that panics answers an
    /// error and leaves its thread serving the next.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may have gone (a dropped request); its answer is then not needed.
            let _ = tx.send(f());
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Database("the store's threads have stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Database("store call failed: it panicked".into()))?
    }
}

fn run(jobs: Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        // The panic was reported by the panic hook; the job's dropped sender tells its caller.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}
