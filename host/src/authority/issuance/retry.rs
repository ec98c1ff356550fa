//! When to try an issuer again, and when to give up: plain arithmetic, no I/O, over the
//! operator's [`RetryPolicy`].

pub use crate::config::RetryPolicy;

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again at this Unix time.
    RetryAt(i64),
    /// Stop: the order becomes invalid.
    GiveUp,
}

impl RetryPolicy {
    /// After the `attempts`-th failed attempt (1 for the first) of a job created at `created`,
    /// at `now`. `hint` is the issuer's own retry-after, honoured when longer than the backoff.
    pub fn after_failure(&self, attempts: u32, created: i64, now: i64, hint: Option<u32>) -> Next {
        if attempts >= self.max_attempts {
            return Next::GiveUp;
        }
        let at = now + self.delay(attempts, hint);
        if at > created.saturating_add(self.give_up_after_seconds) {
            Next::GiveUp
        } else {
            Next::RetryAt(at)
        }
    }

    /// Exponential backoff from `base_delay_seconds`, capped, never shorter than `hint`.
    pub fn delay(&self, attempts: u32, hint: Option<u32>) -> i64 {
        let doublings = attempts.saturating_sub(1).min(30);
        let backoff = self
            .base_delay_seconds
            .max(1)
            .saturating_mul(1 << doublings)
            .min(self.max_delay_seconds.max(1));
        backoff.max(hint.map_or(0, i64::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_hints() {
        let p = RetryPolicy::default();
        let delays: Vec<i64> = (1..=8).map(|a| p.delay(a, None)).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 120, 120]);
        assert_eq!(p.delay(1, Some(30)), 30, "a longer hint wins");
        assert_eq!(
            p.delay(5, Some(3)),
            32,
            "a shorter hint does not shorten backoff"
        );
        assert_eq!(p.delay(u32::MAX, None), 120, "no overflow");
    }

    #[test]
    fn gives_up_after_max_attempts_or_deadline() {
        let p = RetryPolicy {
            max_attempts: 3,
            give_up_after_seconds: 100,
            base_delay_seconds: 10,
            max_delay_seconds: 60,
        };
        assert_eq!(p.after_failure(1, 0, 0, None), Next::RetryAt(10));
        assert_eq!(p.after_failure(2, 0, 10, None), Next::RetryAt(30));
        assert_eq!(
            p.after_failure(3, 0, 30, None),
            Next::GiveUp,
            "third attempt was the last"
        );
        assert_eq!(
            p.after_failure(1, 0, 95, None),
            Next::GiveUp,
            "retry would pass the deadline"
        );
        assert_eq!(
            p.after_failure(1, 0, 0, Some(200)),
            Next::GiveUp,
            "hint beyond the deadline"
        );
    }
}
