//! Resource limits per plugin kind, each a named number with the reason for it.

use std::time::Duration;

/// How often the engine's epoch advances. The CPU budget is counted in these ticks, and a
/// running guest yields to the async executor once per tick, so a busy plugin holds a tokio
/// worker for at most this long. 10 ms stops a runaway loop within ~50 ms (measured) while
/// costing the ticker thread nothing noticeable.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest memory any plugin may be granted. The pooling allocator sizes every memory
/// slot's limit from it; it also bounds an operator's per-plugin override. 512 MiB fits a
/// componentize-py plugin (an 18 MB component whose interpreter heap grows well beyond it).
pub const MAX_PLUGIN_MEMORY: usize = 512 << 20;

/// Concurrent instances across all plugins, which sizes the pooling allocator. Each slot
/// reserves address space (not memory); 256 is above the sum of the per-kind concurrency
/// limits below for a handful of plugins of each kind.
pub const POOL_INSTANCES: u32 = 256;

/// The limits of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of the instance, in bytes.
    pub memory_bytes: usize,
    /// Guest execution time (counted in [`EPOCH_TICK`]s while the guest runs).
    pub cpu: Duration,
    /// Wall-clock time of the whole call: instantiate, configure, the call itself, and host
    /// capability calls (HTTP, DNS, ZeroMQ) made on the way.
    pub wall: Duration,
    /// Calls of one plugin running at once; more wait (inside `wall`) for a slot.
    pub concurrency: usize,
}

impl Limits {
    /// The CPU budget in epoch ticks, at least one.
    pub fn cpu_ticks(&self) -> u64 {
        let ticks = self.cpu.as_millis() / EPOCH_TICK.as_millis().max(1);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// Challenge validators decide an authorization: allow-lists and lookups take microseconds of
/// CPU, so 200 ms only catches loops. The wall time covers a network check through the host
/// (HTTP, DNS, TLS probe) with the same 10 s budget as the built-in validation. 32 MiB fits a
/// Rust or Go guest with room; concurrency 32 matches parallel authorizations of a few large
/// orders on 2 cores.
pub const VALIDATOR_LIMITS: Limits = Limits {
    memory_bytes: 32 << 20,
    cpu: Duration::from_millis(200),
    wall: Duration::from_secs(10),
    concurrency: 32,
};

/// Issuer connectors talk to a remote CA (ZeroMQ, HTTP) that may sign slowly: 30 s wall.
/// Parsing and building ASN.1 costs more CPU than validation: 500 ms. 64 MiB for chains and
/// CRLs. Concurrency 16: finalize requests are rarer than validations, and the CA behind is
/// usually the bottleneck.
pub const ISSUER_LIMITS: Limits = Limits {
    memory_bytes: 64 << 20,
    cpu: Duration::from_millis(500),
    wall: Duration::from_secs(30),
    concurrency: 16,
};

/// Target deployers push to remote systems and wait for reloads: 60 s wall, 1 s CPU. Few at
/// once (4) so a burst of renewals does not hammer the same targets.
pub const DEPLOYER_LIMITS: Limits = Limits {
    memory_bytes: 64 << 20,
    cpu: Duration::from_secs(1),
    wall: Duration::from_secs(60),
    concurrency: 4,
};

/// Notifiers format a message and make one webhook or mail call: 15 s wall, 200 ms CPU,
/// 32 MiB. 8 at once is plenty for event bursts (a mass revocation) without flooding chat
/// endpoints.
pub const NOTIFIER_LIMITS: Limits = Limits {
    memory_bytes: 32 << 20,
    cpu: Duration::from_millis(200),
    wall: Duration::from_secs(15),
    concurrency: 8,
};

/// Consecutive faults (trap, timeout, out of memory) after which a plugin is quarantined.
/// One fault can be a bad input; three in a row is a broken plugin.
pub const QUARANTINE_AFTER: u32 = 3;
/// First quarantine period, doubled for each further fault up to [`QUARANTINE_MAX`].
pub const QUARANTINE_BASE: Duration = Duration::from_secs(1);
/// Longest quarantine: a plugin fixed by its backend recovering is retried within minutes.
pub const QUARANTINE_MAX: Duration = Duration::from_secs(300);

/// Log lines a plugin may write per call before the rest are dropped and counted, and the
/// longest line kept; so a flooding plugin cannot drown the gateway's own log.
pub const LOG_LINES_PER_CALL: u32 = 100;
/// See [`LOG_LINES_PER_CALL`].
pub const LOG_LINE_MAX_BYTES: usize = 2048;

/// Bytes a plugin may ask from `random.bytes` at once; keys and nonces need far less.
pub const RANDOM_MAX_BYTES: u32 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_budgets_are_whole_ticks_and_memory_fits_the_pool() {
        assert_eq!(VALIDATOR_LIMITS.cpu_ticks(), 20);
        let tiny = Limits {
            cpu: Duration::from_millis(1),
            ..VALIDATOR_LIMITS
        };
        assert_eq!(tiny.cpu_ticks(), 1);
        for limits in [
            VALIDATOR_LIMITS,
            ISSUER_LIMITS,
            DEPLOYER_LIMITS,
            NOTIFIER_LIMITS,
        ] {
            assert!(limits.memory_bytes <= MAX_PLUGIN_MEMORY);
            assert!(limits.cpu < limits.wall);
        }
    }
}
