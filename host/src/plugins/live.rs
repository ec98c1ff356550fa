//! The live version of a loaded plugin: calls take the version current when they start and
//! finish on it; a reload swaps in the next one atomically.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use wasmtime::Store;

use super::bindings::World;
use super::capabilities::HostState;

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

/// One loaded version of a plugin of world `W`: its linked component, its call context and
/// what it said about itself at load.
pub(crate) struct Loaded<W: World> {
    pub(crate) pre: W::Pre,
    pub(crate) calls: super::runtime::CallContext,
    pub(crate) info: super::PluginInfo,
}

impl<W: World> Loaded<W> {
    /// One call in a fresh instance of this version: instantiate, configure with the
    /// operator's configuration, then `f`. A configuration the fresh instance refuses is the
    /// plugin's own error, like the `Err` of `f`.
    pub(crate) async fn call<R>(
        &self,
        call: &'static str,
        f: impl AsyncFnOnce(
            &W::Bindings,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, super::error::Failure>>,
    ) -> Result<R, super::PluginError> {
        let inner = self;
        inner
            .calls
            .call(call, async move |store| {
                let (bindings, configured) =
                    W::instantiate_configured(&inner.pre, store, &inner.calls.config).await?;
                if let Err(message) = configured {
                    return Ok(Err(super::error::Failure::Retryable(format!(
                        "configure failed in a fresh instance: {message}"
                    ))));
                }
                f(&bindings, store).await
            })
            .await
    }
}

impl<W: World> std::fmt::Debug for Loaded<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("calls", &self.calls)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<W: World> Live<Loaded<W>> {
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

/// Defines the handle type of one plugin kind (`$handle`, over world `$world` with default
/// limits `$limits`), the runtime's `$load` and `$reload` for it, and the accessors every kind
/// has (info, stats, status). The kind's own calls are written beside it, on `version()`.
macro_rules! plugin_handle {
    ($(#[$doc:meta])* $handle:ident, $world:ty, $limits:expr, $load:ident, $reload:ident) => {
        $(#[$doc])*
        ///
        /// Cheap to clone; clones share the plugin and see its reloads. Reloading swaps the
        /// current version atomically: a call takes the version current when it starts and
        /// finishes on it, and a failed reload leaves the old version in place.
        #[derive(Clone, Debug)]
        pub struct $handle {
            current: $crate::plugins::live::Live<$crate::plugins::live::Loaded<$world>>,
        }

        impl $crate::plugins::PluginRuntime {
            /// Loads the plugin: compile (or cache), version check, link, then `describe`
            /// (which must name this kind) and `configure` as a canary; an error at any step
            /// means the plugin is not used.
            pub async fn $load(
                &self,
                spec: $crate::plugins::PluginSpec,
            ) -> Result<$handle, $crate::plugins::PluginError> {
                Ok($handle {
                    current: $crate::plugins::live::Live::new(
                        self.load_version::<$world>(spec, $limits).await?,
                    ),
                })
            }

            /// Loads a new version (new file, configuration, grants or limits) with the same
            /// canary, then swaps it in; on any error the old version stays.
            pub async fn $reload(
                &self,
                plugin: &$handle,
                spec: $crate::plugins::PluginSpec,
            ) -> Result<(), $crate::plugins::PluginError> {
                plugin
                    .current
                    .swap(self.load_version::<$world>(spec, $limits).await?);
                Ok(())
            }
        }

        impl $handle {
            /// The version calls start on now.
            fn version(&self) -> std::sync::Arc<$crate::plugins::live::Loaded<$world>> {
                self.current.current()
            }

            /// What the current version said about itself at load.
            pub fn info(&self) -> $crate::plugins::PluginInfo {
                self.current.info()
            }

            /// Counters of the current version since it was loaded.
            pub fn stats(&self) -> $crate::plugins::PluginStats {
                self.current.stats()
            }

            /// File hash, generation, load time, counters and last error of the current
            /// version.
            pub fn status(&self) -> $crate::plugins::PluginStatus {
                self.current.status()
            }
        }
    };
}

pub(crate) use plugin_handle;
