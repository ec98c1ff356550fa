//! Every way a plugin load or call can fail, kept apart so that the caller can act on each:
//! answer the ACME client, retry, or alert the operator.

use std::time::Duration;

/// A plugin load or call failure. `plugin` is the operator's name for the plugin.
///
/// The display text is for logs and operators; plugin-supplied text in it comes from the
/// plugin, which never sees secrets of other plugins or of the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin ran and reported a failure through the WIT `result` (expected errors, e.g.
    /// a backend it depends on is down). `permanent`: the plugin said no retry can succeed
    /// (`plugin-error.permanent`); 0.1.0 plugins' errors are never permanent.
    #[error("plugin {plugin} failed{} in {call}: {message}", if *permanent { " permanently" } else { "" })]
    Plugin {
        plugin: String,
        call: &'static str,
        message: String,
        permanent: bool,
    },
    /// The operator's configuration was refused by the plugin's `configure`.
    #[error("plugin {plugin} refused its configuration: {message}")]
    Config { plugin: String, message: String },
    /// The guest trapped (panic, unreachable, bad memory access, or a host fault). The
    /// instance was dropped; the next call gets a fresh one.
    #[error("plugin {plugin} trapped in {call}: {detail}")]
    Trap {
        plugin: String,
        call: &'static str,
        detail: String,
    },
    /// The call ran out of its CPU budget or its wall-clock time.
    #[error("plugin {plugin} exceeded its {limit} limit of {budget:?} in {call}")]
    Timeout {
        plugin: String,
        call: &'static str,
        limit: TimeLimit,
        budget: Duration,
    },
    /// The guest tried to grow its memory beyond its limit.
    #[error("plugin {plugin} ran out of memory in {call} (limit {limit_bytes} bytes)")]
    OutOfMemory {
        plugin: String,
        call: &'static str,
        limit_bytes: usize,
    },
    /// The plugin trapped too often and is not called until `retry_in` has passed.
    #[error(
        "plugin {plugin} is quarantined after {traps} consecutive faults; retry in {retry_in:?}"
    )]
    Quarantined {
        plugin: String,
        traps: u32,
        retry_in: Duration,
    },
    /// An operator disabled the plugin; it is not called until enabled again.
    #[error("plugin {plugin} is disabled by an operator")]
    Disabled { plugin: String },
    /// The component was built for a contract version this gateway does not speak.
    #[error("plugin {plugin} speaks {found}; this gateway speaks {supported}")]
    IncompatibleVersion {
        plugin: String,
        found: String,
        supported: String,
    },
    /// Not a component, not valid, of the wrong kind, or its imports cannot be satisfied.
    #[error("plugin {plugin} is not a usable component: {detail}")]
    InvalidModule { plugin: String, detail: String },
    /// The plugin file or the compiled-artifact cache could not be read or written.
    #[error("failed to {action} for plugin {plugin}: {source}")]
    Io {
        plugin: String,
        action: String,
        #[source]
        source: std::io::Error,
    },
    /// The runtime itself could not be set up (engine configuration, linker).
    #[error("plugin runtime: {0}")]
    Runtime(String),
}

/// A failure a plugin reported through its WIT `result`: the `plugin-error` of the current
/// contract, or a 0.1.0 plugin's bare string (retryable, see `compat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The same call may succeed later.
    Retryable(String),
    /// No retry can succeed.
    Permanent(String),
}

/// Which time limit a call hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeLimit {
    /// Guest execution time, measured in epoch ticks while the guest runs.
    Cpu,
    /// Wall-clock time of the whole call, including host capability calls.
    WallClock,
}

impl std::fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "CPU",
            Self::WallClock => "wall-clock",
        })
    }
}

impl PluginError {
    /// Whether this outcome counts towards quarantine: the guest misbehaved (trap, time, memory)
    /// rather than reporting an error through its interface.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Self::Trap { .. } | Self::Timeout { .. } | Self::OutOfMemory { .. }
        )
    }

    /// Whether the plugin said that no retry of this call can succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Plugin {
                permanent: true,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_formats_with_the_plugin_name() {
        let p = || "p1".to_string();
        let all = [
            PluginError::Plugin {
                plugin: p(),
                call: "validate",
                message: "down".into(),
                permanent: false,
            },
            PluginError::Plugin {
                plugin: p(),
                call: "deploy",
                message: "no such directory".into(),
                permanent: true,
            },
            PluginError::Config {
                plugin: p(),
                message: "bad".into(),
            },
            PluginError::Trap {
                plugin: p(),
                call: "validate",
                detail: "unreachable".into(),
            },
            PluginError::Timeout {
                plugin: p(),
                call: "validate",
                limit: TimeLimit::Cpu,
                budget: Duration::from_millis(100),
            },
            PluginError::OutOfMemory {
                plugin: p(),
                call: "validate",
                limit_bytes: 1,
            },
            PluginError::Quarantined {
                plugin: p(),
                traps: 3,
                retry_in: Duration::from_secs(1),
            },
            PluginError::Disabled { plugin: p() },
            PluginError::IncompatibleVersion {
                plugin: p(),
                found: "acmegate:plugin@1.0.0".into(),
                supported: "acmegate:plugin@0.2.x or acmegate:plugin@0.1.x".into(),
            },
            PluginError::InvalidModule {
                plugin: p(),
                detail: "magic".into(),
            },
            PluginError::Io {
                plugin: p(),
                action: "read".into(),
                source: std::io::Error::other("gone"),
            },
        ];
        for err in &all {
            assert!(err.to_string().contains("p1"), "{err}");
        }
        let faults: Vec<bool> = all.iter().map(PluginError::is_fault).collect();
        assert_eq!(
            faults,
            [false, false, false, true, true, true, false, false, false, false, false]
        );
        let permanent: Vec<bool> = all.iter().map(PluginError::is_permanent).collect();
        assert_eq!(
            permanent,
            [false, true, false, false, false, false, false, false, false, false, false]
        );
        assert_eq!(
            all[1].to_string(),
            "plugin p1 failed permanently in deploy: no such directory"
        );
        assert_eq!(all[0].to_string(), "plugin p1 failed in validate: down");
        assert!(PluginError::Runtime("x".into()).to_string().contains("x"));
    }
}
