//! Idle connections: a connection with no request in flight for `server.client_timeout_seconds`
//! is closed, whatever its protocol or phase (before its first byte, between keep-alive
//! requests, an HTTP/2 connection with no open stream, a client that reads its answer slowly).
//! hyper's own header-read timeout covers a request that is under way but slow.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// What a connection is doing: requests in flight, and when the last one started or ended.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `started` of the last request start or end.
    last_ms: AtomicU64,
}

/// A request in flight on its connection, until dropped.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Marks a request as started; it counts as in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Busy(self.clone())
    }

    /// Resolves once the connection has had no request in flight for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Acquire));
            let deadline = last + limit;
            if Instant::now() >= deadline && self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::time::sleep_until(deadline.max(Instant::now() + limit / 4)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_only_without_requests_in_flight() {
        let limit = Duration::from_millis(150);
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle_for(limit).await;
        assert!(started.elapsed() >= limit);

        // A request in flight for longer than the limit keeps the connection.
        let busy = activity.begin();
        let watched = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(limit).await }
        });
        tokio::time::sleep(limit * 3).await;
        assert!(!watched.is_finished(), "closed under a request in flight");
        let ended = Instant::now();
        drop(busy);
        watched.await.unwrap();
        assert!(
            ended.elapsed() >= limit,
            "idle counts from the request's end"
        );
    }
}
