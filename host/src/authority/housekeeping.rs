//! Store maintenance any replica may do, as often as it likes (every step is idempotent):
//! forgetting redeemed nonces once they could not be accepted anyway.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Gateway;
use crate::nonce::Nonces;

/// How often redeemed nonces are pruned: the table holds at most about this long's worth of
/// requests beyond the nonces' own lifetime.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Prunes redeemed nonces now and every [`PRUNE_EVERY`] until `stop` turns true; `None` when
/// this gateway's nonces live in memory.
pub fn spawn(
    gw: Arc<Gateway>,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !matches!(gw.nonces, Nonces::Sealed(_)) {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            let now = gw.now();
            match gw.db(move |s| s.prune_redeemed_nonces(now)).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "expired redeemed nonces pruned"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning redeemed nonces failed; retrying later")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = stop.changed() => break,
            }
        }
    }))
}
