//! Retention on a schedule: every `retention.interval_seconds`, one replica (whichever claims
//! the run first in `scheduled_tasks`) deletes what expired more than `retention.keep_days`
//! ago, and moves audit entries older than `retention.audit_keep_days` to archive files;
//! `crate::store` decides what that is. Replicas poll the schedule with one read each;
//! the claim is a compare-and-set, so a run happens once per interval across all of them, and
//! a run a dying process left half done is finished by the next (pruning is idempotent).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Gateway;
use crate::store::{Archived, Pruned, StoreError, PRUNE_BATCH, RETENTION_TASK};

/// Audit entries per archive file: a file a person can still open, and a bounded transaction.
pub const ARCHIVE_BATCH: i64 = 10_000;

/// What one retention run did.
#[derive(Clone, Debug, Default)]
pub struct RetentionRun {
    pub pruned: Pruned,
    /// The archive files written, oldest first.
    pub archived: Vec<Archived>,
}

/// How often a replica looks whether a run is due, at most: a run starts within this of its
/// time (and at once on a gateway's start when one is due).
const POLL_EVERY: Duration = Duration::from_secs(60);

/// Runs retention if a run is due at the gateway's now and this process claims it; returns
/// what it did, `None` when no run was due here.
pub async fn run_due(gw: &Gateway) -> Result<Option<RetentionRun>, StoreError> {
    let now = gw.now();
    let retention = gw.config.retention.clone();
    let owner = gw.issuance.owner().to_owned();
    let next = now.saturating_add(retention.interval());
    let claimed = gw
        .db(move |s| s.claim_scheduled(RETENTION_TASK, &owner, now, next))
        .await?;
    if !claimed {
        return Ok(None);
    }
    let cutoff = retention.cutoff(now);
    let pruned = gw.db(move |s| s.prune(cutoff, now, PRUNE_BATCH)).await?;
    let mut archived = Vec::new();
    if let Some(cutoff) = retention.audit_cutoff(now) {
        let dir = retention.audit_archive_dir(&gw.config.data_dir);
        loop {
            let dir = dir.clone();
            let file = gw
                .db(move |s| s.archive_audit(&dir, cutoff, ARCHIVE_BATCH))
                .await?;
            match file {
                Some(file) => archived.push(file),
                None => break,
            }
        }
    }
    Ok(Some(RetentionRun { pruned, archived }))
}

/// Polls the schedule until `stop` turns true (every [`POLL_EVERY`], or the interval when it
/// is shorter).
pub fn spawn(gw: Arc<Gateway>, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let period = POLL_EVERY.min(Duration::from_secs(gw.config.retention.interval_seconds));
    tokio::spawn(super::every(period, stop, move || {
        let gw = gw.clone();
        async move {
            match run_due(&gw).await {
                Ok(Some(RetentionRun {
                    pruned: p,
                    archived,
                })) => {
                    tracing::info!(
                        orders = p.orders,
                        authorizations = p.authorizations,
                        challenges = p.challenges,
                        nonces = p.nonces,
                        expiry_notices = p.expiry_notices,
                        "retention: expired objects pruned"
                    );
                    for a in archived {
                        tracing::info!(first = a.first, last = a.last, file = %a.file.display(), "retention: audit entries archived");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "retention run failed; the next one retries"),
            }
        }
    }))
}
