//! The shape every lease-holding background worker shares: claim what is due with a lease in
//! the store (so that each piece of work is done by one replica, and taken over when its
//! owner dies and the lease runs out), start each claimed piece, and look again after a pause.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Gateway;
use crate::store::{Store, StoreError};

/// How a claiming worker paces itself.
pub(super) struct Pace {
    /// What the worker claims, for its error log ("deployment jobs").
    pub what: &'static str,
    /// The longest pause between two claims: work that falls due is at most this late.
    pub poll: Duration,
    /// How long a claim holds a piece of work before another process may take it over.
    pub lease_seconds: i64,
    /// Pieces claimed at once; a full batch is followed by another claim without a pause.
    pub batch: i64,
}

/// How long a stopping worker waits for the pieces it started before it abandons them to
/// their leases: as long as the listeners give open connections to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Runs a worker until `stop` turns true: claims up to `pace.batch` pieces with
/// `claim(store, owner, now, lease_until, batch)` on the gateway's clock and spawns
/// `work(gateway, piece)` for each. On stop it waits (up to [`DRAIN`]) for the pieces under
/// way, so that a gateway that has shut down writes nothing more: a piece still running after
/// that is aborted, and its lease hands it to the next process.
pub(super) fn spawn_claiming<T, Claim, Work, Fut>(
    gw: Arc<Gateway>,
    mut stop: watch::Receiver<bool>,
    pace: Pace,
    claim: Claim,
    work: Work,
) -> JoinHandle<()>
where
    T: Send + 'static,
    Claim: Fn(&Store, &str, i64, i64, i64) -> Result<Vec<T>, StoreError>
        + Clone
        + Send
        + Sync
        + 'static,
    Work: Fn(Arc<Gateway>, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            let (owner, t) = (gw.issuance.owner().to_owned(), gw.now());
            let (lease_until, batch, claim) =
                (t + pace.lease_seconds.max(1), pace.batch, claim.clone());
            let full = match gw
                .db(move |s| claim(s, &owner, t, lease_until, batch))
                .await
            {
                Ok(pieces) => {
                    let full = pieces.len() >= usize::try_from(batch).unwrap_or(usize::MAX);
                    for piece in pieces {
                        running.spawn(work(gw.clone(), piece));
                    }
                    full
                }
                Err(e) => {
                    tracing::error!(error = %e, "worker cannot claim its {}", pace.what);
                    false
                }
            };
            if full && !*stop.borrow() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(pace.poll) => {}
                _ = stop.changed() => break,
            }
        }
        let drained = tokio::time::timeout(DRAIN, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                unfinished = running.len(),
                "{} still under way {DRAIN:?} after shutdown began; their leases hand them on",
                pace.what
            );
            running.shutdown().await;
        }
    })
}
