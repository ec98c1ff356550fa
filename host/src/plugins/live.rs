//! The live version of a loaded plugin: calls take the version current when they start and
//! finish on it; a reload swaps in the next one atomically.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Shared by every clone of a plugin handle, so all of them see reloads.
#[derive(Debug)]
pub(crate) struct Live<T>(Arc<RwLock<Arc<T>>>, Arc<AtomicU64>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), self.1.clone())
    }
}

impl<T> Live<T> {
    pub(crate) fn new(first: Arc<T>) -> Self {
        Self(Arc::new(RwLock::new(first)), Arc::new(AtomicU64::new(1)))
    }

    /// 1 for the version loaded first, one more for each reload.
    pub(crate) fn generation(&self) -> u64 {
        self.1.load(Ordering::Relaxed)
    }

    /// The version calls start on now. A poisoned lock is still consistent: the only write is
    /// one assignment of an `Arc`.
    pub(crate) fn current(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn swap(&self, next: Arc<T>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = next;
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

/// One loaded version of a plugin: its linked component (`P`, the world's pre-instance), its
/// call context and what it said about itself at load.
pub(crate) struct Loaded<P> {
    pub(crate) pre: P,
    pub(crate) calls: super::runtime::CallContext,
    pub(crate) info: super::PluginInfo,
}

impl<P> std::fmt::Debug for Loaded<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("calls", &self.calls)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<P> Live<Loaded<P>> {
    /// What the current version said about itself at load.
    pub(crate) fn info(&self) -> super::PluginInfo {
        self.current().info.clone()
    }

    /// Counters of the current version since it was loaded.
    pub(crate) fn stats(&self) -> super::PluginStats {
        self.current().calls.stats()
    }

    /// Everything an operator sees of the plugin.
    pub(crate) fn status(&self) -> super::PluginStatus {
        let version = self.current();
        let calls = &version.calls;
        super::PluginStatus {
            info: version.info.clone(),
            stats: calls.stats(),
            sha256: calls.sha256.clone(),
            generation: self.generation(),
            loaded_at: calls.loaded_at,
            last_error: calls.last_error(),
        }
    }
}
