//! Whether a long run holds its pace: throughput in its first and last window and the
//! process's resident memory over the run (`acmegate bench --duration`). A server that slows
//! down as its tables grow, or leaks, shows it here where a short run hides it.

use std::path::Path;
use std::time::Duration;

/// The first and the last window of a timed run, and the memory the process held.
#[derive(Debug, Clone, PartialEq)]
pub struct Steadiness {
    /// Length of the windows compared: a minute, or a third of a shorter run.
    pub window: Duration,
    /// Orders completed per second in the run's first window.
    pub first_per_second: f64,
    /// Orders completed per second in the run's last window.
    pub last_per_second: f64,
    /// Resident memory of the server's process (for the in-process gateway, with the load
    /// generator's) at the end of the first window, at the end of the run, and the most
    /// sampled, in MB; and at half time, so that memory still filling its bounded caches
    /// after the first window can be told from memory growing without end (which keeps
    /// growing through the second half).
    pub rss_after_first_mb: f64,
    pub rss_half_mb: f64,
    pub rss_end_mb: f64,
    pub rss_max_mb: f64,
}

impl Steadiness {
    /// The window a run of `duration` compares: a minute once the run is three minutes or
    /// longer, else a third of it (so that the first and last never overlap).
    pub fn window_for(duration: Duration) -> Duration {
        if duration >= Duration::from_secs(180) {
            Duration::from_secs(60)
        } else {
            (duration / 3).max(Duration::from_millis(100))
        }
    }

    /// Reads the windows off the completion times (seconds since the start) of a run that
    /// lasted `elapsed`, and the memory off `rss` samples (seconds since the start, MB).
    pub fn measure(
        completions: &[f64],
        elapsed: Duration,
        window: Duration,
        rss: &[(f64, f64)],
    ) -> Self {
        let (w, end) = (window.as_secs_f64(), elapsed.as_secs_f64());
        let rate = |from: f64, to: f64| {
            completions.iter().filter(|&&t| t >= from && t < to).count() as f64 / (to - from)
        };
        // The last sample at or before `t`, or the first one there is.
        let rss_at = |t: f64| {
            rss.iter()
                .take_while(|(at, _)| *at <= t)
                .last()
                .or(rss.first())
                .map_or(0.0, |(_, mb)| *mb)
        };
        Self {
            window,
            first_per_second: rate(0.0, w),
            // Completions at the very end count in the last window.
            last_per_second: rate((end - w).max(0.0), end + f64::EPSILON),
            rss_after_first_mb: rss_at(w),
            rss_half_mb: rss_at(end / 2.0),
            rss_end_mb: rss.last().map_or(0.0, |(_, mb)| *mb),
            rss_max_mb: rss.iter().map(|(_, mb)| *mb).fold(0.0, f64::max),
        }
    }

    /// The last window's throughput against the first's, in percent (negative: slower).
    pub fn change_percent(&self) -> f64 {
        (self.last_per_second / self.first_per_second.max(f64::MIN_POSITIVE) - 1.0) * 100.0
    }

    /// How much the memory grew over the run's second half, in percent of its size at half
    /// time.
    pub fn second_half_growth_percent(&self) -> f64 {
        (self.rss_end_mb / self.rss_half_mb.max(f64::MIN_POSITIVE) - 1.0) * 100.0
    }

    /// The report's line.
    pub fn line(&self) -> String {
        let w = self.window.as_secs_f64();
        format!(
            "steadiness: first {w:.0} s {:.1} orders/s, last {w:.0} s {:.1} orders/s ({:+.1}%); \
             RSS {:.0} MB after the first {w:.0} s, {:.0} MB at half time, {:.0} MB at the end \
             ({:+.1}% over the second half), {:.0} MB at most",
            self.first_per_second,
            self.last_per_second,
            self.change_percent(),
            self.rss_after_first_mb,
            self.rss_half_mb,
            self.rss_end_mb,
            self.second_half_growth_percent(),
            self.rss_max_mb,
        )
    }
}

/// A process's resident memory in MB, from its `/proc/PID/status` (0 where there is none).
pub fn rss_mb(status: &Path) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_a_minute_or_a_third_of_a_short_run() {
        assert_eq!(
            Steadiness::window_for(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            Steadiness::window_for(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn first_and_last_windows_count_their_own_completions() {
        // 10 orders/s for the first 10 s, 5/s for the last 10 s of a 30 s run.
        let mut completions: Vec<f64> = (0..100).map(|i| f64::from(i) / 10.0).collect();
        completions.extend((0..50).map(|i| 20.0 + f64::from(i) / 5.0));
        let rss = [(1.0, 50.0), (10.0, 60.0), (20.0, 70.0), (30.0, 65.0)];
        let s = Steadiness::measure(
            &completions,
            Duration::from_secs(30),
            Duration::from_secs(10),
            &rss,
        );
        assert_eq!((s.first_per_second, s.last_per_second), (10.0, 5.0));
        assert_eq!(s.change_percent(), -50.0);
        assert_eq!(
            (
                s.rss_after_first_mb,
                s.rss_half_mb,
                s.rss_end_mb,
                s.rss_max_mb
            ),
            (60.0, 60.0, 65.0, 70.0)
        );
        assert!(s.line().contains("(-50.0%)"), "{}", s.line());
        assert!(
            s.line().contains("(+8.3% over the second half)"),
            "{}",
            s.line()
        );
    }

    #[test]
    fn this_process_has_resident_memory() {
        assert!(rss_mb(Path::new("/proc/self/status")) > 1.0);
        assert_eq!(rss_mb(Path::new("/proc/nonexistent/status")), 0.0);
    }
}
