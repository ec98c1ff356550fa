//! `[retention]`: how long expired ACME objects are kept and how often they are pruned
//! (`crate::authority::retention`, `crate::store` for what goes).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `[retention]` configuration section.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Prune at all. Off, the database keeps every order, authorization and challenge.
    pub enabled: bool,
    /// Days an expired authorization, and an order that expired without a certificate, are
    /// kept after they expired. 0 prunes them at the first run after they expire.
    pub keep_days: u32,
    /// Seconds between runs. One replica runs each (whichever claims it first).
    pub interval_seconds: u64,
    /// Days audit entries stay in the database; older ones move to archive files in
    /// `audit_archive_dir` at each run (`crate::store` keeps the chain verifiable). 0 keeps
    /// the whole log in the database.
    pub audit_keep_days: u32,
    /// Where archived audit entries go; empty means `<data_dir>/audit-archive`. With several
    /// replicas, whichever runs retention writes there: a shared directory keeps one archive.
    pub audit_archive_dir: PathBuf,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keep_days: 30,
            interval_seconds: 3600,
            audit_keep_days: 0,
            audit_archive_dir: PathBuf::new(),
        }
    }
}

/// The longest interval accepted: a year. Longer is "never", which `enabled = false` says.
pub const MAX_INTERVAL_SECONDS: u64 = 366 * 86_400;
/// The longest keep accepted: a hundred years, so that `keep_days` in seconds fits any clock.
pub const MAX_KEEP_DAYS: u32 = 36_525;

impl RetentionConfig {
    /// Range checks, naming the key, the value and what is expected.
    pub(super) fn check(&self) -> Result<(), String> {
        if !(1..=MAX_INTERVAL_SECONDS).contains(&self.interval_seconds) {
            return Err(format!(
                "retention.interval_seconds = {}: expected 1 to {MAX_INTERVAL_SECONDS}",
                self.interval_seconds
            ));
        }
        for (key, days) in [
            ("keep_days", self.keep_days),
            ("audit_keep_days", self.audit_keep_days),
        ] {
            if days > MAX_KEEP_DAYS {
                return Err(format!(
                    "retention.{key} = {days}: expected 0 to {MAX_KEEP_DAYS}"
                ));
            }
        }
        Ok(())
    }

    /// The audit entries a run at `now` archives: those written before this. `None` when the
    /// log stays in the database.
    pub fn audit_cutoff(&self, now: i64) -> Option<i64> {
        (self.audit_keep_days > 0).then(|| now - i64::from(self.audit_keep_days) * 86_400)
    }

    /// The archive directory, `data_dir`'s `audit-archive` unless set.
    pub fn audit_archive_dir(&self, data_dir: &Path) -> PathBuf {
        if self.audit_archive_dir.as_os_str().is_empty() {
            data_dir.join("audit-archive")
        } else {
            self.audit_archive_dir.clone()
        }
    }

    /// The cutoff of a run at `now`: what expired before it goes.
    pub fn cutoff(&self, now: i64) -> i64 {
        now - i64::from(self.keep_days) * 86_400
    }

    /// The interval in seconds as the clock counts them.
    pub fn interval(&self) -> i64 {
        // Bounded by `check` to a year.
        i64::try_from(self.interval_seconds).unwrap_or(i64::MAX)
    }
}
