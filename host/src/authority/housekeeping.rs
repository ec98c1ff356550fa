//! Work any replica does on its own, as often as it likes (every step is idempotent): noticing
//! other replicas' revocations so that this one's CRL follows within a second, obeying plugin
//! switches an admin made on another replica, and forgetting redeemed nonces once they could
//! not be accepted anyway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Gateway;
use crate::nonce::Nonces;

/// How often a replica looks for revocations and plugin switches made elsewhere.
const REVOCATIONS_EVERY: Duration = Duration::from_secs(1);
/// How often redeemed nonces are pruned: the table holds at most about this long's worth of
/// requests beyond the nonces' own lifetime.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Starts what this gateway needs: both loops when replicas may share its database
/// (PostgreSQL), none on SQLite, where this process makes every revocation itself and keeps
/// its nonces in memory. They end when `stop` turns true.
pub fn spawn(gw: Arc<Gateway>, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    if gw.store.backend() != "sqlite" {
        tasks.push(tokio::spawn(follow_revocations(gw.clone(), stop.clone())));
        if gw.plugins.is_some() {
            tasks.push(tokio::spawn(follow_plugin_switches(
                gw.clone(),
                stop.clone(),
            )));
        }
    }
    if matches!(gw.nonces, Nonces::Sealed(_)) {
        tasks.push(tokio::spawn(prune_nonces(gw, stop)));
    }
    tasks
}

/// Rebuilds this replica's CRL on its next request whenever the database's revocation
/// generation moves (a revocation here or on any other replica).
async fn follow_revocations(gw: Arc<Gateway>, stop: watch::Receiver<bool>) {
    let seen = Arc::new(std::sync::Mutex::new(None));
    super::every(REVOCATIONS_EVERY, stop, move || {
        let (gw, seen) = (gw.clone(), seen.clone());
        async move {
            match gw.db(|s| s.revocation_generation()).await {
                Ok(generation) => {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    if seen.is_some_and(|seen| seen != generation) {
                        gw.crl.invalidate();
                        tracing::debug!(generation, "a revocation elsewhere: CRL to be rebuilt");
                    }
                    *seen = Some(generation);
                }
                Err(e) => tracing::warn!(error = %e, "reading the revocation generation failed"),
            }
        }
    })
    .await
}

/// Applies the plugin switches that change in the database (the ones there at start were
/// applied then; a plugin drained because its file is gone stays drained until a switch).
async fn follow_plugin_switches(gw: Arc<Gateway>, stop: watch::Receiver<bool>) {
    let seen = Arc::new(std::sync::Mutex::new(None::<BTreeMap<String, bool>>));
    super::every(REVOCATIONS_EVERY, stop, move || {
        let (gw, seen) = (gw.clone(), seen.clone());
        async move {
            let switches = match gw.db(|s| s.plugin_switches()).await {
                Ok(switches) => switches.into_iter().collect::<BTreeMap<_, _>>(),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the plugin switches failed");
                    return;
                }
            };
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if let (Some(before), Some(runtime)) = (seen.as_ref(), &gw.plugins) {
                for (name, enabled) in &switches {
                    if before.get(name) != Some(enabled) {
                        runtime.set_enabled(name, *enabled);
                        tracing::warn!(plugin = %name, enabled, "plugin switched on another replica");
                    }
                }
            }
            *seen = Some(switches);
        }
    })
    .await
}

async fn prune_nonces(gw: Arc<Gateway>, stop: watch::Receiver<bool>) {
    super::every(PRUNE_EVERY, stop, move || {
        let gw = gw.clone();
        async move {
            let now = gw.now();
            match gw.db(move |s| s.prune_redeemed_nonces(now)).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "expired redeemed nonces pruned"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning redeemed nonces failed; retrying later")
                }
            }
        }
    })
    .await
}
