//! `[issuance]`: how finalized orders are handed to issuers and retried
//! (`crate::authority::issuance`).

use serde::{Deserialize, Serialize};

/// The `[issuance]` configuration section.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct IssuanceConfig {
    /// How long finalize waits for the issuer before answering `processing`.
    pub inline_wait_ms: u64,
    /// How long a process owns a job it works on; after a crash, the job waits this long
    /// before another process takes it over.
    pub lease_seconds: i64,
    /// Jobs the background worker runs at once.
    pub workers: usize,
    pub retry: RetryPolicy,
    /// Issuers taken out of service (a CA key rotated out, a connector decommissioned), by the
    /// name their certificates carry. At start the gateway moves the ARI windows (RFC 9773) of
    /// their valid certificates to now, once per certificate, so that clients renew through
    /// the profiles' current issuers; no profile may name one.
    pub retired_issuers: Vec<String>,
}

impl Default for IssuanceConfig {
    fn default() -> Self {
        Self {
            inline_wait_ms: 5_000,
            lease_seconds: 120,
            workers: 8,
            retry: RetryPolicy::default(),
            retired_issuers: Vec::new(),
        }
    }
}

/// How failed issuance attempts are retried (config `[issuance]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts (the first included) before the order becomes invalid.
    pub max_attempts: u32,
    /// Seconds after finalize at which a still-failing order becomes invalid, whatever the
    /// attempt count. ACME clients poll for minutes, not days.
    pub give_up_after_seconds: i64,
    /// Delay after the first failure; doubles with every further one.
    pub base_delay_seconds: i64,
    pub max_delay_seconds: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            give_up_after_seconds: 15 * 60,
            base_delay_seconds: 2,
            max_delay_seconds: 120,
        }
    }
}
