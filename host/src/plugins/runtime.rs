//! The plugin runtime: the engine and linker shared by all plugins, loading (read, cache,
//! compile, version check, link), and the one function every plugin call goes through, which
//! applies the limits and keeps the outcomes apart.
//!
//! Each call gets a fresh `Store` and instance from the plugin's `InstancePre`, so a call
//! that trapped, timed out or ran out of memory leaves nothing behind: its store is dropped
//! and never reused (wasmtime refuses to re-enter a trapped instance anyway).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::capabilities::HostCapabilities;
use super::cache::{sha256, ArtifactCache};
use super::capabilities::{Grants, HostState};
use super::engine::{build_engine, EpochTicker};
use super::error::{Failure, PluginError, TimeLimit};
use super::limits::{Limits, MAX_PLUGIN_MEMORY, QUARANTINE_AFTER, QUARANTINE_BASE, QUARANTINE_MAX};
use super::state::{KvRegistry, KvState};
use super::version;
use crate::clock::Clock;
use crate::hex::lower as hex;

/// Runtime settings.
#[derive(Clone, Debug, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Where plugins' `state` lives; `None` keeps it in memory.
    pub state: Option<super::state::StateBacking>,
    /// The DNS server of the `dns` capability (the gateway's `validation.dns_resolver`);
    /// `None` uses the system configuration.
    pub dns_server: Option<std::net::SocketAddr>,
    /// Times quarantines and load times: the gateway's clock, so tests move it.
    pub clock: Clock,
}

/// What the operator configured for one plugin.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    /// The operator's name for it (logs, errors, its key-value state).
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// Its configuration, JSON, passed to `configure`. Not secret (it may show in `Debug`);
    /// tokens and keys go in `grants.secrets`, which the plugin reads through `secrets.get`.
    pub config: String,
    /// What it may use; nothing by default.
    pub grants: Grants,
    /// Limits, when not the defaults of its kind.
    pub limits: Option<Limits>,
}

impl PluginSpec {
    /// A spec with an empty configuration, no grants and the default limits.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            config: "{}".into(),
            grants: Grants::default(),
            limits: None,
        }
    }
}

/// The engine, the linker with every host capability, and the compiled-artifact cache. Cheap to
/// clone; one per gateway.
#[derive(Clone)]
pub struct PluginRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ArtifactCache>,
    kv: KvRegistry,
    dns: Arc<super::dns_client::PluginDns>,
    /// Names of plugins an operator disabled; shared with every loaded version's calls, so a
    /// reload does not switch a disabled plugin back on.
    disabled: Disabled,
    clock: Clock,
    _ticker: EpochTicker,
}

type Disabled = Arc<std::sync::RwLock<std::collections::BTreeSet<String>>>;

/// The call a load or reload canary starts with.
const CANARY_CALL: &str = "describe";

impl fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl PluginRuntime {
    /// Switches the plugin `name` off (its calls fail with [`PluginError::Disabled`] at once,
    /// without running it) or back on. Calls already running finish.
    pub fn set_enabled(&self, name: &str, enabled: bool) {
        let mut disabled = self
            .inner
            .disabled
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if enabled {
            disabled.remove(name);
        } else {
            disabled.insert(name.to_owned());
        }
    }

    pub fn is_enabled(&self, name: &str) -> bool {
        !self
            .inner
            .disabled
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    pub fn new(options: RuntimeOptions) -> Result<Self, PluginError> {
        let engine = build_engine()?;
        let runtime = |e: wasmtime::Error| PluginError::Runtime(format!("linker: {e:#}"));
        let mut linker = Linker::new(&engine);
        // WASI p2 for guests built for it (Python, JavaScript); the context grants nothing.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(runtime)?;
        HostCapabilities::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(runtime)?;
        // Components built against 0.1.0 import the same capabilities under their 0.1.0 names.
        super::bindings::add_v0_1_capabilities_to_linker(&mut linker).map_err(runtime)?;
        let cache = options
            .cache_dir
            .as_deref()
            .map(ArtifactCache::open)
            .transpose()?;
        let ticker = EpochTicker::start(&engine)?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                kv: KvRegistry::new(options.state.clone()),
                dns: Arc::new(super::dns_client::PluginDns::new(options.dns_server)),
                disabled: Disabled::default(),
                clock: options.clock,
                _ticker: ticker,
            }),
        })
    }

    /// Reads, compiles (or loads from the cache), version-checks and links a component, and
    /// returns its `InstancePre` with everything a call needs. The world-specific loaders
    /// (e.g. `load_validator`) wrap it and run the describe + configure canary.
    /// One loaded version of a plugin of world `W`: prepare (compile or cache, version check,
    /// link), then the describe + configure canary; `describe` must name `W`.
    pub(crate) async fn load_version<W: super::bindings::World>(
        &self,
        spec: PluginSpec,
        default_limits: Limits,
    ) -> Result<Arc<super::live::Loaded<W>>, PluginError> {
        let prepared = self.prepare(spec, default_limits).await?;
        let calls = prepared.calls;
        let pre =
            W::pre(prepared.pre, prepared.contract).map_err(|e| PluginError::InvalidModule {
                plugin: calls.name.to_string(),
                detail: format!("not a {}: {e:#}", W::NAME),
            })?;
        let (info, configured) = calls
            .call(CANARY_CALL, async |store| {
                Ok(Ok(
                    W::describe_and_configure(&pre, store, &calls.config).await?
                ))
            })
            .await?;
        let info = calls.accept_canary(info, configured, W::NAME)?;
        Ok(Arc::new(super::live::Loaded { pre, calls, info }))
    }

    pub(crate) async fn prepare(
        &self,
        spec: PluginSpec,
        default_limits: Limits,
    ) -> Result<Prepared, PluginError> {
        let name = spec.name.clone();
        let (component, digest, cached) = self.read_and_compile(&name, &spec.path).await?;
        let contract = self.check_version(&name, &component)?;
        let pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            PluginError::InvalidModule {
                plugin: name.clone(),
                detail: format!("{e:#}"),
            }
        })?;
        let limits = spec.limits.unwrap_or(default_limits);
        if limits.memory_bytes > MAX_PLUGIN_MEMORY {
            return Err(PluginError::Runtime(format!(
                "plugin {name}: memory limit {} exceeds the maximum {MAX_PLUGIN_MEMORY}",
                limits.memory_bytes
            )));
        }
        tracing::info!(plugin = %name, sha256 = %hex(&digest), cached, "compiled plugin");
        Ok(Prepared {
            pre,
            contract,
            calls: CallContext {
                engine: self.inner.engine.clone(),
                kv: self.inner.kv.for_plugin(&name),
                dns: self.inner.dns.clone(),
                name: name.into(),
                config: spec.config,
                grants: Arc::new(spec.grants),
                limits,
                sha256: hex(&digest),
                semaphore: tokio::sync::Semaphore::new(limits.concurrency.max(1)),
                health: Mutex::new(Health::default()),
                stats: Counters::default(),
                disabled: self.inner.disabled.clone(),
                loaded_at: self.inner.clock.now(),
                clock: self.inner.clock.clone(),
                last_error: Mutex::new(None),
            },
        })
    }

    /// Reads the component file of plugin `name`, refuses what is not a component, and
    /// compiles it (or takes it from the cache); returns it with the file's SHA-256 and
    /// whether the cache had it.
    async fn read_and_compile(
        &self,
        name: &str,
        path: &std::path::Path,
    ) -> Result<(Component, [u8; 32], bool), PluginError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| PluginError::Io {
                plugin: name.to_owned(),
                action: format!("read {}", path.display()),
                source,
            })?;
        check_component_header(name, &bytes)?;
        let digest = sha256(&bytes);
        let inner = self.inner.clone();
        let compile_name = name.to_owned();
        // Compiling takes milliseconds to seconds of CPU; keep it off the async workers.
        let (component, cached) =
            tokio::task::spawn_blocking(move || compile(&inner, &compile_name, &bytes, &digest))
                .await
                .map_err(|e| PluginError::Runtime(format!("compile task: {e}")))??;
        Ok((component, digest, cached))
    }

    /// A component's import and export names (`acmegate:plugin/http@0.1.0`, `wasi:...`).
    fn interface_names(&self, component: &Component) -> (Vec<String>, Vec<String>) {
        let engine = &self.inner.engine;
        let ty = component.component_type();
        let imports = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
        let exports = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        (imports, exports)
    }

    /// What the component at `path` declares, read from its type without instantiating it
    /// (nothing of it runs): for `acmegate plugins inspect`, before an operator loads it.
    pub async fn inspect(&self, path: &std::path::Path) -> Result<Inspection, PluginError> {
        let name = path.display().to_string();
        let (component, digest, _) = self.read_and_compile(&name, path).await?;
        let (imports, exports) = self.interface_names(&component);
        let incompatible =
            version::first_incompatible(imports.iter().chain(&exports).map(String::as_str));
        let contract = exports
            .iter()
            .chain(&imports)
            .find_map(|name| name.strip_prefix("acmegate:plugin/")?.split_once('@'))
            .map(|(_, v)| format!("{}@{v}", version::CONTRACT_PACKAGE));
        Ok(Inspection {
            sha256: hex(&digest),
            imports,
            exports,
            contract,
            incompatible,
        })
    }

    /// The contract line `component` speaks, which picks its bindings; an error for one this
    /// gateway does not speak. A component that names none of our interfaces is taken as
    /// current and fails to link with a message naming what it lacks.
    fn check_version(
        &self,
        name: &str,
        component: &Component,
    ) -> Result<version::Contract, PluginError> {
        let (imports, exports) = self.interface_names(component);
        let names = imports.iter().chain(&exports).map(String::as_str);
        match version::contract_of(names) {
            Ok(contract) => Ok(contract.unwrap_or(version::Contract::V0_2)),
            Err(found) => Err(PluginError::IncompatibleVersion {
                plugin: name.into(),
                found,
                supported: version::supported(),
            }),
        }
    }
}

/// What a component file declares ([`PluginRuntime::inspect`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Every import: the contract's capabilities and WASI interfaces.
    pub imports: Vec<String>,
    /// Every export: the world's interfaces.
    pub exports: Vec<String>,
    /// The contract version its interface names carry (`acmegate:plugin@0.2.0`), if any.
    pub contract: Option<String>,
    /// The first contract version this gateway does not speak (it would not load), if any.
    pub incompatible: Option<String>,
}

impl Inspection {
    /// The plugin kind its exports make it (`challenge-validator`, ...), if one.
    pub fn kind(&self) -> Option<&'static str> {
        self.exports.iter().find_map(|name| {
            let interface = name.strip_prefix("acmegate:plugin/")?.split('@').next()?;
            match interface {
                "validator" => Some("challenge-validator"),
                "issuer" => Some("issuer-connector"),
                "deployer" => Some("target-deployer"),
                "notifications" => Some("notifier"),
                _ => None,
            }
        })
    }
}

fn compile(
    inner: &RuntimeInner,
    name: &str,
    bytes: &[u8],
    digest: &[u8; 32],
) -> Result<(Component, bool), PluginError> {
    match &inner.cache {
        Some(cache) => cache.load_or_compile(&inner.engine, name, bytes, digest),
        None => Component::new(&inner.engine, bytes)
            .map(|c| (c, false))
            .map_err(|e| PluginError::InvalidModule {
                plugin: name.into(),
                detail: format!("{e:#}"),
            }),
    }
}

/// Refuses what is not a component before handing it to the compiler, with a message that
/// says what to do.
fn check_component_header(name: &str, bytes: &[u8]) -> Result<(), PluginError> {
    let invalid = |detail: &str| PluginError::InvalidModule {
        plugin: name.into(),
        detail: detail.into(),
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(invalid("not a WebAssembly file"));
    }
    // Bytes 4..8: version and layer; a core module is version 1, layer 0.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(invalid(
            "a core WebAssembly module, not a component; build it with plugins/build.sh \
             (or `wasm-tools component new`)",
        ));
    }
    Ok(())
}

/// A linked component and its call context, before the world-specific canary.
pub(crate) struct Prepared {
    pub(crate) pre: InstancePre<HostState>,
    /// The contract line it speaks, which picks its bindings.
    pub(crate) contract: version::Contract,
    pub(crate) calls: CallContext,
}

/// Consecutive-fault tracking for quarantine, in [`Clock::monotonic`] readings.
#[derive(Debug, Default)]
struct Health {
    consecutive_faults: u32,
    quarantined_until: Option<Duration>,
}

impl Health {
    fn record(&mut self, fault: bool, now: Duration) {
        if !fault {
            *self = Self::default();
            return;
        }
        self.consecutive_faults += 1;
        if self.consecutive_faults >= QUARANTINE_AFTER {
            let doublings = (self.consecutive_faults - QUARANTINE_AFTER).min(16);
            let backoff = QUARANTINE_BASE
                .saturating_mul(1u32 << doublings)
                .min(QUARANTINE_MAX);
            self.quarantined_until = Some(now + backoff);
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    faults: AtomicU64,
    log_lines_dropped: AtomicU64,
}

/// What the operator sees of a loaded plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginStatus {
    pub info: super::PluginInfo,
    pub stats: PluginStats,
    /// SHA-256 of the component file, hex.
    pub sha256: String,
    /// 1 for the first load, one more per reload.
    pub generation: u64,
    /// When the current version was loaded (Unix seconds).
    pub loaded_at: i64,
    pub last_error: Option<String>,
}

/// Counters of one loaded plugin since it was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PluginStats {
    pub calls: u64,
    /// Traps, timeouts and out-of-memory outcomes.
    pub faults: u64,
    /// Log lines dropped over the per-call budget.
    pub log_lines_dropped: u64,
}

/// Everything a call of one loaded plugin version needs, and its health.
pub(crate) struct CallContext {
    engine: Engine,
    kv: Arc<KvState>,
    dns: Arc<super::dns_client::PluginDns>,
    pub(crate) name: Arc<str>,
    pub(crate) config: String,
    grants: Arc<Grants>,
    pub(crate) limits: Limits,
    pub(crate) sha256: String,
    semaphore: tokio::sync::Semaphore,
    health: Mutex<Health>,
    stats: Counters,
    disabled: Disabled,
    /// When this version was loaded (Unix seconds).
    pub(crate) loaded_at: i64,
    clock: Clock,
    /// The last call's error, if a call of this version failed.
    last_error: Mutex<Option<String>>,
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    fn new_store(&self) -> Store<HostState> {
        let state = HostState::new(
            self.name.clone(),
            self.grants.clone(),
            self.kv.clone(),
            self.dns.clone(),
            self.limits.memory_bytes,
            self.limits.cpu_ticks(),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        // Guest time is counted in ticks that arrive while the guest runs; at each one the
        // guest yields to the executor, so a busy plugin never holds a worker thread for
        // more than a tick and the wall-clock timeout can fire.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let cpu = &mut ctx.data_mut().cpu;
            cpu.used_ticks += 1;
            if cpu.used_ticks >= cpu.budget_ticks {
                cpu.exhausted = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    pub(crate) fn stats(&self) -> PluginStats {
        PluginStats {
            calls: self.stats.calls.load(Ordering::Relaxed),
            faults: self.stats.faults.load(Ordering::Relaxed),
            log_lines_dropped: self.stats.log_lines_dropped.load(Ordering::Relaxed),
        }
    }

    /// The error of the last call of this version that failed.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn check_enabled(&self) -> Result<(), PluginError> {
        let disabled = self.disabled.read().unwrap_or_else(|e| e.into_inner());
        if disabled.contains(&*self.name) {
            return Err(PluginError::Disabled {
                plugin: self.name.to_string(),
            });
        }
        Ok(())
    }

    fn check_quarantine(&self) -> Result<(), PluginError> {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.monotonic();
        match health.quarantined_until {
            Some(until) if until > now => Err(PluginError::Quarantined {
                plugin: self.name.to_string(),
                traps: health.consecutive_faults,
                retry_in: until - now,
            }),
            _ => Ok(()),
        }
    }

    /// Runs one call in a fresh store under the plugin's limits. `f` instantiates, configures
    /// and calls; it returns the plugin's own `result` inside wasmtime's. Every outcome is
    /// sorted into a [`PluginError`] variant and counted towards quarantine.
    /// Judges a load canary: `describe` must name the world the plugin is loaded as, and
    /// `configure` must accept the operator's configuration.
    pub(crate) fn accept_canary(
        &self,
        info: super::bindings::wit::types::PluginInfo,
        configured: Result<(), String>,
        world: &'static str,
    ) -> Result<super::PluginInfo, PluginError> {
        let info = super::PluginInfo::from(info);
        if info.kind.name() != world {
            return Err(PluginError::InvalidModule {
                plugin: self.name.to_string(),
                detail: format!("describe says {}, loaded as a {world}", info.kind.name()),
            });
        }
        configured.map_err(|message| PluginError::Config {
            plugin: self.name.to_string(),
            message,
        })?;
        tracing::info!(plugin = %self.name, name = %info.name, version = %info.version,
            sha256 = %self.sha256, "loaded {world}");
        Ok(info)
    }

    pub(crate) async fn call<R>(
        &self,
        call: &'static str,
        f: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<Result<R, Failure>>,
    ) -> Result<R, PluginError> {
        // The load canary (describe + configure) runs even for a disabled plugin, so that an
        // operator can reload it before switching it back on.
        if call != CANARY_CALL {
            self.check_enabled()?;
        }
        self.check_quarantine()?;
        let limits = self.limits;
        let ran = tokio::time::timeout(limits.wall, async {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = self.semaphore.acquire().await;
            let mut store = self.new_store();
            let outcome = f(&mut store).await;
            (outcome, store)
        })
        .await;
        let result = match ran {
            Err(_elapsed) => Err(PluginError::Timeout {
                plugin: self.name.to_string(),
                call,
                limit: TimeLimit::WallClock,
                budget: limits.wall,
            }),
            Ok((outcome, store)) => {
                let state = store.data();
                if state.log.dropped > 0 {
                    tracing::warn!(plugin = %self.name, call, dropped = state.log.dropped,
                        "plugin log lines over the per-call budget were dropped");
                    self.stats
                        .log_lines_dropped
                        .fetch_add(state.log.dropped, Ordering::Relaxed);
                }
                self.classify(call, outcome, state)
                // `store` drops here: a store that trapped is never reused.
            }
        };
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = &result {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err.to_string());
        }
        let fault = result.as_ref().err().is_some_and(PluginError::is_fault);
        if fault {
            self.stats.faults.fetch_add(1, Ordering::Relaxed);
            if let Err(err) = &result {
                tracing::warn!(plugin = %self.name, call, "plugin fault: {err}");
            }
        }
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(fault, self.clock.monotonic());
        result
    }

    fn classify<R>(
        &self,
        call: &'static str,
        outcome: wasmtime::Result<Result<R, Failure>>,
        state: &HostState,
    ) -> Result<R, PluginError> {
        let plugin = self.name.to_string();
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Retryable(message))) => Err(PluginError::Plugin {
                plugin,
                call,
                message,
                permanent: false,
            }),
            Ok(Err(Failure::Permanent(message))) => Err(PluginError::Plugin {
                plugin,
                call,
                message,
                permanent: true,
            }),
            // The limiter's flag tells an allocation failure from other traps: a Rust guest
            // whose `memory.grow` fails aborts with `unreachable`.
            Err(_) if state.memory.exceeded => Err(PluginError::OutOfMemory {
                plugin,
                call,
                limit_bytes: state.memory.limit,
            }),
            Err(_) if state.cpu.exhausted => Err(PluginError::Timeout {
                plugin,
                call,
                limit: TimeLimit::Cpu,
                budget: self.limits.cpu,
            }),
            Err(err) => Err(PluginError::Trap {
                plugin,
                call,
                detail: trap_detail(&err),
            }),
        }
    }
}

/// The trap code when there is one (`wasm unreachable instruction executed`), else the
/// error chain.
fn trap_detail(err: &wasmtime::Error) -> String {
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    }
}

/// Quarantine timing, exposed for tests of the backoff.
#[cfg(test)]
pub(crate) fn quarantine_after(faults: u32) -> Option<Duration> {
    let now = Duration::from_secs(1_000);
    let mut health = Health::default();
    for _ in 0..faults {
        health.record(true, now);
    }
    health.quarantined_until.map(|until| until - now)
}
