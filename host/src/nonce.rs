//! Single-use anti-replay nonces (RFC 8555 §6.5).
//!
//! Nonces live in memory: each is issued once, accepted once, and forgotten after use or when
//! the bounded pool evicts the oldest. A restart invalidates outstanding nonces, which clients
//! recover from through `badNonce` and the fresh nonce it carries (§6.5).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// How many unused nonces are remembered. Clients use a nonce within seconds; 100k outstanding
/// nonces cover thousands of concurrent clients and cost about 4 MiB.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The pool of outstanding nonces.
#[derive(Debug)]
pub struct NoncePool {
    rng: SystemRandom,
    capacity: usize,
    inner: Mutex<Outstanding>,
}

#[derive(Debug, Default)]
struct Outstanding {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl NoncePool {
    pub fn new(capacity: usize) -> Self {
        Self {
            rng: SystemRandom::new(),
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// Issues a fresh nonce: 128 random bits, base64url (§6.5.1 requires base64url).
    pub fn issue(&self) -> String {
        let mut bytes = [0u8; 16];
        // SystemRandom only fails if the OS RNG is unavailable; there is no safe fallback.
        self.rng
            .fill(&mut bytes)
            .unwrap_or_else(|_| panic!("operating system RNG failed"));
        let nonce = B64.encode(bytes);
        let mut inner = self.lock();
        while inner.order.len() >= self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.set.remove(&old);
            }
        }
        inner.set.insert(nonce.clone());
        inner.order.push_back(nonce.clone());
        nonce
    }

    /// Consumes a nonce; true only the first time for a nonce this pool issued.
    pub fn consume(&self, nonce: &str) -> bool {
        // The VecDeque entry is left behind and dropped when it reaches the front; the set
        // decides validity, so a consumed nonce can never be accepted twice.
        self.lock().set.remove(nonce)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outstanding> {
        // A poisoned lock only means another thread panicked mid-insert; the set stays usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for NoncePool {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_single_use() {
        let pool = NoncePool::default();
        let n = pool.issue();
        assert!(pool.consume(&n));
        assert!(!pool.consume(&n));
        assert!(!pool.consume("never-issued"));
    }

    #[test]
    fn oldest_is_evicted_at_capacity() {
        let pool = NoncePool::new(2);
        let a = pool.issue();
        let b = pool.issue();
        let c = pool.issue();
        assert!(!pool.consume(&a));
        assert!(pool.consume(&b));
        assert!(pool.consume(&c));
    }

    #[test]
    fn nonces_are_distinct_base64url() {
        let pool = NoncePool::default();
        let set: HashSet<String> = (0..1000).map(|_| pool.issue()).collect();
        assert_eq!(set.len(), 1000);
        assert!(set.iter().all(|n| n.len() == 22 && B64.decode(n).is_ok()));
    }
}
