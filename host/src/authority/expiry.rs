//! Expiry notices: a background check tells the notifiers when a certificate has 30, 14, 7 and
//! 0 days left, once per threshold. Which thresholds were sent lives in the database
//! (`expiry_notices`), recorded before sending, so a restart or a second replica never sends
//! one twice (at most once: a crash between recording and delivery loses that notice).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::authority::Gateway;
use crate::plugins::Severity;
use crate::store::StoreError;

/// Days before notAfter at which notifiers hear of it.
pub const THRESHOLDS: [i32; 4] = [30, 14, 7, 0];

/// How often the check runs: thresholds are days apart, so a few minutes late is on time, and
/// the query only reads certificates within 30 days of expiry.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(600);

const DAY: i64 = 86_400;

/// The threshold a certificate with `days_left` whole days left has reached, if any.
pub fn threshold(days_left: i64) -> Option<i32> {
    THRESHOLDS
        .iter()
        .rev()
        .find(|t| days_left <= i64::from(**t))
        .copied()
}

/// Info a month ahead, warning within two weeks, critical on the last day.
pub fn severity(threshold: i32) -> Severity {
    match threshold {
        t if t >= 30 => Severity::Info,
        t if t >= 7 => Severity::Warning,
        _ => Severity::Critical,
    }
}

/// Sends the notices now due; returns how many this gateway sent.
pub async fn check(gw: &Gateway) -> Result<usize, StoreError> {
    let now = gw.now();
    // A certificate that expired within the last day still gets its 0-day notice.
    let candidates = gw
        .db(move |s| s.certificates_expiring(now - DAY, now + i64::from(THRESHOLDS[0] + 1) * DAY))
        .await?;
    let mut sent = 0;
    for cert in candidates {
        let days_left = (cert.not_after - now).div_euclid(DAY).max(0);
        let Some(threshold) = threshold(days_left) else {
            continue;
        };
        let serial = cert.serial.clone();
        if gw
            .db(move |s| s.record_expiry_notice(&serial, threshold, now))
            .await?
        {
            crate::authority::notify::expiring(gw, &cert, days_left, threshold);
            sent += 1;
        }
    }
    Ok(sent)
}

/// Runs [`check`] now and every [`CHECK_INTERVAL`] until `stop` turns true.
pub fn spawn(gw: Arc<Gateway>, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(super::every(CHECK_INTERVAL, stop, move || {
        let gw = gw.clone();
        async move {
            match check(&gw).await {
                Ok(0) => {}
                Ok(sent) => tracing::info!(sent, "expiry notices sent"),
                Err(e) => tracing::warn!(error = %e, "expiry check failed; retrying later"),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_severities() {
        assert_eq!(threshold(45), None);
        assert_eq!(threshold(31), None);
        assert_eq!(threshold(30), Some(30));
        assert_eq!(threshold(15), Some(30));
        assert_eq!(threshold(14), Some(14));
        assert_eq!(threshold(8), Some(14));
        assert_eq!(threshold(7), Some(7));
        assert_eq!(threshold(1), Some(7));
        assert_eq!(threshold(0), Some(0));
        assert!(matches!(severity(30), Severity::Info));
        assert!(matches!(severity(14), Severity::Warning));
        assert!(matches!(severity(7), Severity::Warning));
        assert!(matches!(severity(0), Severity::Critical));
    }
}
