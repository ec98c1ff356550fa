//! Where the gateway reads the time. Every decision that depends on time (expiries of RFC 8555
//! objects, leases, retries, CRL ages, expiry notices, plugin quarantines) asks the [`Clock`]
//! it was handed, so tests move a clock instead of sleeping, and nothing reads the wall clock
//! behind the authority's back. It sits below every layer (the authority owns the one the
//! gateway runs on, `authority::Gateway::clock`, and hands it to the plugin runtime), so the
//! parts can take it without reaching up into the authority.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The system clock, or a test clock that clones share.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<TestClock>>);

#[derive(Debug)]
enum TestClock {
    /// Reads this Unix time until moved.
    Fixed(AtomicI64),
    /// Reads the system clock plus this many seconds: time runs as usual (leases renew,
    /// timeouts fire) and a test jumps it forward.
    Shifted(AtomicI64),
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that reads `start` (Unix seconds) until it is moved.
    pub fn fixed(start: i64) -> Self {
        Self(Some(Arc::new(TestClock::Fixed(AtomicI64::new(start)))))
    }

    /// The system clock, until [`Clock::advance`] moves it ahead.
    pub fn shifted() -> Self {
        Self(Some(Arc::new(TestClock::Shifted(AtomicI64::new(0)))))
    }

    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        let wall = || chrono::Utc::now().timestamp();
        match self.0.as_deref() {
            None => wall(),
            Some(TestClock::Fixed(t)) => t.load(Ordering::SeqCst),
            Some(TestClock::Shifted(offset)) => wall() + offset.load(Ordering::SeqCst),
        }
    }

    /// A reading for measuring spans (plugin quarantines), since an arbitrary origin. On the
    /// system clock it is monotonic, so that a wall-clock step (NTP, an operator) neither
    /// stretches nor cuts a span; a test clock reads its own time, so moving it moves this.
    pub fn monotonic(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let since_origin = || ORIGIN.get_or_init(Instant::now).elapsed();
        let secs =
            |t: &AtomicI64| Duration::from_secs(t.load(Ordering::SeqCst).max(0).unsigned_abs());
        match self.0.as_deref() {
            None => since_origin(),
            Some(TestClock::Fixed(t)) => secs(t),
            Some(TestClock::Shifted(offset)) => since_origin() + secs(offset),
        }
    }

    /// Moves a test clock forward by `seconds`. The system clock cannot be moved: calling
    /// this on it is a bug in the caller, reported loudly rather than ignored.
    pub fn advance(&self, seconds: i64) {
        match self.0.as_deref() {
            None => panic!("the system clock cannot be moved"),
            Some(TestClock::Fixed(t) | TestClock::Shifted(t)) => {
                t.fetch_add(seconds, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::fixed(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now(), 1_000);
        shared.advance(90);
        assert_eq!(clock.now(), 1_090);
    }

    #[test]
    fn monotonic_readings_move_with_a_test_clock() {
        let fixed = Clock::fixed(1_000);
        let before = fixed.monotonic();
        fixed.advance(5);
        assert_eq!(fixed.monotonic() - before, Duration::from_secs(5));
        let shifted = Clock::shifted();
        let before = shifted.monotonic();
        shifted.advance(60);
        assert!(shifted.monotonic() - before >= Duration::from_secs(60));
        let system = Clock::system();
        let before = system.monotonic();
        assert!(system.monotonic() >= before);
    }

    #[test]
    fn a_shifted_clock_runs_with_the_system_clock_ahead_by_what_it_was_moved() {
        let clock = Clock::shifted();
        let system = Clock::system();
        assert!((clock.now() - system.now()).abs() <= 1);
        clock.clone().advance(3_600);
        let ahead = clock.now() - system.now();
        assert!((3_599..=3_601).contains(&ahead), "{ahead}");
    }
}
