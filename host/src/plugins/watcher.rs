//! Hot reload: watches the configured plugin files and swaps in a new version when one
//! changes, with no request dropped.
//!
//! The directories holding the files are watched (a file replaced by rename is a new inode, so
//! watching the file itself would lose it). Events are debounced: a file truncated and
//! rewritten in several writes is reloaded once, after it has been quiet for [`DEBOUNCE`]. A
//! file whose content is what the live version was loaded from (the same build installed
//! again, a `touch`, a burst of events for one change) reloads nothing: one change of content,
//! one reload. A reload compiles in the background, type-checks against the plugin's world and runs describe
//! and configure as a canary before the atomic swap; calls in flight finish on the version they
//! started with. If any step fails, the old version stays live and the failure is logged and
//! counted. A removed file drains its plugin: calls in flight finish, new calls are refused
//! (as for a disabled plugin) until the file is back and loads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::{IssuerPlugin, PluginError, PluginRuntime, PluginSpec, ValidatorPlugin};
use crate::store::Event;

/// Quiet time after the last change of a file before it is reloaded: long enough for a copy
/// or a build tool's several writes, short enough that a new version answers within a second.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// A loaded plugin that can be reloaded in place.
#[derive(Clone, Debug)]
pub enum Reloadable {
    Validator(ValidatorPlugin),
    Issuer(IssuerPlugin),
    Notifier(super::NotifierPlugin),
    Deployer(super::DeployerPlugin),
}

impl Reloadable {
    /// What the live version said about itself.
    pub fn info(&self) -> super::PluginInfo {
        match self {
            Reloadable::Validator(p) => p.info(),
            Reloadable::Issuer(p) => p.info(),
            Reloadable::Notifier(p) => p.info(),
            Reloadable::Deployer(p) => p.info(),
        }
    }

    /// The live version's counters.
    pub fn stats(&self) -> super::PluginStats {
        match self {
            Reloadable::Validator(p) => p.stats(),
            Reloadable::Issuer(p) => p.stats(),
            Reloadable::Notifier(p) => p.stats(),
            Reloadable::Deployer(p) => p.stats(),
        }
    }

    /// Version, file hash, generation, load time, counters and last error.
    pub fn status(&self) -> super::PluginStatus {
        match self {
            Reloadable::Validator(p) => p.status(),
            Reloadable::Issuer(p) => p.status(),
            Reloadable::Notifier(p) => p.status(),
            Reloadable::Deployer(p) => p.status(),
        }
    }
}

/// One watched plugin: how to build its spec, and the live plugin.
#[derive(Clone, Debug)]
pub struct Watched {
    pub spec: PluginSpec,
    pub plugin: Reloadable,
}

/// Reload counters, for status and metrics.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub reloads: AtomicU64,
    pub failures: AtomicU64,
}

/// Starts watching; the task ends when `stop` turns true. Reloads and failed reloads are
/// recorded in `audit`'s log.
pub fn spawn(
    runtime: PluginRuntime,
    plugins: Vec<Watched>,
    stats: Arc<ReloadStats>,
    audit: crate::store::Store,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, PluginError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !changes_content(&event.kind) {
                return;
            }
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| PluginError::Runtime(format!("cannot watch plugin files: {e}")))?;
    let dirs: BTreeSet<PathBuf> = plugins.iter().map(|p| parent(&p.spec.path)).collect();
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| PluginError::Runtime(format!("cannot watch {}: {e}", dir.display())))?;
    }
    let by_path: BTreeMap<PathBuf, Watched> = plugins
        .into_iter()
        .map(|p| (absolute(&p.spec.path), p))
        .collect();
    Ok(tokio::spawn(async move {
        // The watcher lives as long as the task.
        let _watcher = watcher;
        // Files removed while their plugin was enabled: enabled again when they come back.
        let mut drained = BTreeSet::new();
        loop {
            let first = tokio::select! {
                path = rx.recv() => match path {
                    Some(path) => path,
                    None => break,
                },
                _ = stop.changed() => break,
            };
            let mut changed = BTreeSet::from([absolute(&first)]);
            // Debounce: wait until the files have been quiet.
            while let Ok(Some(path)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                changed.insert(absolute(&path));
            }
            for path in changed {
                let Some(watched) = by_path.get(&path) else {
                    continue;
                };
                let name = &watched.spec.name;
                if !path.exists() {
                    // Drain: calls in flight finish, new ones are refused until the file is
                    // back. A plugin an operator had disabled stays the operator's to enable.
                    if runtime.is_enabled(name) && drained.insert(path.clone()) {
                        runtime.set_enabled(name, false);
                        tracing::warn!(plugin = %name, path = %path.display(),
                            "plugin file removed; the plugin is drained until the file is back");
                        let event = Event::new(
                            "plugin.drain",
                            format!("plugin/{name}"),
                            serde_json::json!({ "path": path }),
                        );
                        record(&audit, event).await;
                    }
                    continue;
                }
                if is_live_content(watched, &path).await {
                    // A file back as it was (drained, or replaced by the same build) serves
                    // again with the version already loaded.
                    if drained.remove(&path) {
                        runtime.set_enabled(name, true);
                        tracing::info!(plugin = %name, "plugin file is back; the plugin serves again");
                    }
                    continue;
                }
                // The outcome is logged, counted and recorded; the watcher goes on.
                let reloaded = reload_recorded(&runtime, watched, &stats, &audit).await;
                if reloaded.is_ok() && drained.remove(&path) {
                    runtime.set_enabled(name, true);
                    tracing::info!(plugin = %name, "plugin file is back; the plugin serves again");
                }
            }
        }
    }))
}

/// Whether a file event can mean new content (or a file gone or back). Opening and reading
/// are not changes: on Linux every open of a watched file is reported, so reacting to them
/// would reload a plugin whenever anything reads its file (a backup, a checksum, another
/// gateway loading the same file, or this reload itself).
fn changes_content(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
    use notify::EventKind;
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// Whether the file at `path` holds exactly what the live version of `watched` was loaded
/// from (by SHA-256, as the runtime records it). An unreadable file is not: the reload then
/// reports why.
async fn is_live_content(watched: &Watched, path: &Path) -> bool {
    let path = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || std::fs::read(path)).await;
    match read {
        Ok(Ok(bytes)) => {
            crate::hex::lower(&super::cache::sha256(&bytes)) == watched.plugin.status().sha256
        }
        _ => false,
    }
}

/// Appends `event` to the audit log; a failure is logged, not fatal to the watcher.
pub async fn record(store: &crate::store::Store, event: Event) {
    let result = store.call(move |s| s.record(event)).await;
    if let Err(error) = result {
        tracing::error!(%error, "failed to record a plugin event in the audit log");
    }
}

/// Reloads `watched` from its file, counts the outcome in `stats` and records it in `audit`'s
/// log (as the actor `audit` acts for). A failed reload leaves the old version live.
pub async fn reload_recorded(
    runtime: &PluginRuntime,
    watched: &Watched,
    stats: &ReloadStats,
    audit: &crate::store::Store,
) -> Result<(), PluginError> {
    let outcome = reload(runtime, watched).await;
    let resource = format!("plugin/{}", watched.spec.name);
    let event = match &outcome {
        Ok(()) => {
            stats.reloads.fetch_add(1, Ordering::Relaxed);
            tracing::info!(plugin = %watched.spec.name, "plugin reloaded");
            let version = watched.plugin.info().version;
            Event::new(
                "plugin.reload",
                resource,
                serde_json::json!({ "version": version }),
            )
        }
        Err(e) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(plugin = %watched.spec.name, error = %e,
                "plugin reload failed; the previous version stays live");
            Event::new(
                "plugin.reload_failed",
                resource,
                serde_json::json!({ "error": e.to_string() }),
            )
        }
    };
    record(audit, event).await;
    outcome
}

/// Reloads `watched` from its file (compile, canary, atomic swap).
async fn reload(runtime: &PluginRuntime, watched: &Watched) -> Result<(), PluginError> {
    let spec = watched.spec.clone();
    match &watched.plugin {
        Reloadable::Validator(plugin) => runtime.reload_validator(plugin, spec).await,
        Reloadable::Issuer(plugin) => runtime.reload_issuer(plugin, spec).await,
        Reloadable::Notifier(plugin) => runtime.reload_notifier(plugin, spec).await,
        Reloadable::Deployer(plugin) => runtime.reload_deployer(plugin, spec).await,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn parent(path: &Path) -> PathBuf {
    absolute(path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind,
        RenameMode,
    };
    use notify::EventKind;

    use super::changes_content;

    #[test]
    fn reads_are_not_changes() {
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
        ] {
            assert!(!changes_content(&kind), "{kind:?}");
        }
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Remove(RemoveKind::File),
        ] {
            assert!(changes_content(&kind), "{kind:?}");
        }
    }
}
