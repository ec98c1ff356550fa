//! Retention on a schedule: every `retention.interval_seconds`, one replica (whichever claims
//! the run first in `scheduled_tasks`) deletes what expired more than `retention.keep_days`
//! ago; `crate::store` decides what that is. Replicas poll the schedule with one read each;
//! the claim is a compare-and-set, so a run happens once per interval across all of them, and
//! a run a dying process left half done is finished by the next (pruning is idempotent).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Gateway;
use crate::store::{Pruned, StoreError, PRUNE_BATCH, RETENTION_TASK};

/// How often a replica looks whether a run is due, at most: a run starts within this of its
/// time (and at once on a gateway's start when one is due).
const POLL_EVERY: Duration = Duration::from_secs(60);

/// Runs retention if a run is due at the gateway's now and this process claims it; returns
/// what it pruned, `None` when no run was due here.
pub async fn run_due(gw: &Gateway) -> Result<Option<Pruned>, StoreError> {
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
    Ok(Some(pruned))
}

/// Polls the schedule until `stop` turns true (every [`POLL_EVERY`], or the interval when it
/// is shorter).
pub fn spawn(gw: Arc<Gateway>, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let period = POLL_EVERY.min(Duration::from_secs(gw.config.retention.interval_seconds));
    tokio::spawn(super::every(period, stop, move || {
        let gw = gw.clone();
        async move {
            match run_due(&gw).await {
                Ok(Some(p)) => tracing::info!(
                    orders = p.orders,
                    authorizations = p.authorizations,
                    challenges = p.challenges,
                    nonces = p.nonces,
                    expiry_notices = p.expiry_notices,
                    "retention: expired objects pruned"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "retention run failed; the next one retries"),
            }
        }
    }))
}
