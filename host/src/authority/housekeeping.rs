//! Work any replica does on its own, as often as it likes (every step is idempotent): noticing
//! other replicas' revocations so that this one's CRL follows within a second, obeying plugin
//! switches an admin made on another replica, linking audit entries written on PostgreSQL into
//! the chain, and forgetting redeemed nonces once they could not be accepted anyway.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Gateway;
use crate::nonce::Nonces;
use crate::store::PluginSwitches;

/// How often a replica looks for revocations and plugin switches made elsewhere.
const REVOCATIONS_EVERY: Duration = Duration::from_secs(1);
/// How often audit entries waiting on PostgreSQL are linked into the chain: how long an entry
/// may wait, which bounds how many one linking transaction takes (every read of the log links
/// first, so readers never see a gap).
const LINK_AUDIT_EVERY: Duration = Duration::from_millis(100);
/// How often redeemed nonces are pruned: the table holds at most about this long's worth of
/// requests beyond the nonces' own lifetime.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Starts what this gateway needs: the loops when replicas may share its database
/// (PostgreSQL), none on SQLite, where this process makes every revocation itself, appends to
/// the audit chain directly and keeps its nonces in memory. They end when `stop` turns true.
/// `switches` are the plugin switches applied at start, the point from which changes are
/// followed.
pub fn spawn(
    gw: Arc<Gateway>,
    switches: PluginSwitches,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    if gw.store.backend() != "sqlite" {
        tasks.push(tokio::spawn(follow_revocations(gw.clone(), stop.clone())));
        tasks.push(tokio::spawn(link_audit(gw.clone(), stop.clone())));
        if gw.plugins.is_some() {
            tasks.push(tokio::spawn(follow_plugin_switches(
                gw.clone(),
                switches,
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

/// Applies the plugin switches that change in the database from `applied`, the ones applied
/// at start. Only changes are applied: a plugin drained because its file is gone stays
/// drained until a switch.
async fn follow_plugin_switches(
    gw: Arc<Gateway>,
    applied: PluginSwitches,
    stop: watch::Receiver<bool>,
) {
    let seen = Arc::new(std::sync::Mutex::new(applied));
    super::every(REVOCATIONS_EVERY, stop, move || {
        let (gw, seen) = (gw.clone(), seen.clone());
        async move {
            let switches = match gw.db(|s| s.plugin_switches()).await {
                Ok(switches) => switches,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the plugin switches failed");
                    return;
                }
            };
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(runtime) = &gw.plugins {
                for (name, enabled) in switched(&seen, &switches) {
                    runtime.set_enabled(name, enabled);
                    tracing::warn!(plugin = %name, enabled, "plugin switched on another replica");
                }
            }
            *seen = switches;
        }
    })
    .await
}

/// The switches in `now` that differ from `seen`: a plugin switched since, or for the first
/// time. A switch that disappeared (none do: the admin API only sets them) changes nothing.
fn switched<'a>(
    seen: &'a PluginSwitches,
    now: &'a PluginSwitches,
) -> impl Iterator<Item = (&'a str, bool)> {
    now.iter()
        .filter(|(name, enabled)| seen.get(*name) != Some(enabled))
        .map(|(name, enabled)| (name.as_str(), *enabled))
}

/// Links the audit entries written on PostgreSQL (by any replica) into the chain. A failure
/// is logged when it first happens, not on every retry.
async fn link_audit(gw: Arc<Gateway>, stop: watch::Receiver<bool>) {
    let failing = Arc::new(std::sync::Mutex::new(None::<String>));
    super::every(LINK_AUDIT_EVERY, stop, move || {
        let (gw, failing) = (gw.clone(), failing.clone());
        async move {
            let outcome = gw.db(|s| s.link_pending_audit()).await;
            let mut failing = failing.lock().unwrap_or_else(|e| e.into_inner());
            match outcome {
                Ok(linked) => {
                    if linked > 0 {
                        tracing::trace!(linked, "audit entries linked into the chain");
                    }
                    if failing.take().is_some() {
                        tracing::info!("audit entries are linked into the chain again");
                    }
                }
                Err(e) => {
                    let error = e.to_string();
                    if failing.as_deref() != Some(error.as_str()) {
                        tracing::error!(%error, "linking audit entries failed; retrying");
                        *failing = Some(error);
                    }
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn switches(of: &[(&str, bool)]) -> PluginSwitches {
        of.iter().map(|(n, e)| (n.to_string(), *e)).collect()
    }

    /// Followed from the switches applied at start, a switch made elsewhere before the first
    /// look is applied (it was once taken for the starting point and lost), and one already
    /// applied is not applied again (that would re-enable a plugin drained since).
    #[test]
    fn switches_are_followed_from_the_ones_applied_at_start() {
        let applied = switches(&[("allow", false), ("mail", true)]);
        let now = switches(&[("allow", true), ("mail", true), ("dns", false)]);
        assert_eq!(
            switched(&applied, &now).collect::<Vec<_>>(),
            vec![("allow", true), ("dns", false)]
        );
        assert_eq!(switched(&now, &now).count(), 0);
        assert_eq!(switched(&now, &PluginSwitches::new()).count(), 0);
    }
}
