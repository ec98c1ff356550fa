//! Single-use anti-replay nonces (RFC 8555 §6.5), in one of two designs, by how many
//! processes serve the database:
//!
//! - [`NoncePool`] (SQLite: one process): nonces live in memory; each is issued once, accepted
//!   once, and forgotten after use or when the bounded pool evicts the oldest. A restart
//!   invalidates outstanding nonces, which clients recover from through `badNonce` and the
//!   fresh nonce it carries (§6.5).
//! - [`SealedNonces`] (PostgreSQL: any number of replicas behind a load balancer): a nonce
//!   carries its issue time and random bits sealed with a key every replica of the PKI derives
//!   from the CA key secret, so any replica can tell its own and its peers' nonces from forged
//!   ones without asking anyone; single use is one insert into the shared `redeemed_nonces`
//!   table, whose primary key lets exactly one redemption win. Nonces expire after
//!   [`SEALED_LIFETIME_SECS`]; redeemed ones are pruned after that.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::store::{Store, StoreError};

/// How long a sealed nonce is accepted after it was issued. Clients use a nonce within
/// seconds; an hour covers slow clients and clock differences between replicas.
pub const SEALED_LIFETIME_SECS: i64 = 3600;
/// How far in the future a nonce's issue time may lie: replicas' clocks differ a little.
const CLOCK_SKEW_SECS: i64 = 60;
/// Issue time (8 bytes), random bits (16), seal (the first 16 bytes of an HMAC-SHA256).
const SEALED_LEN: usize = 8 + 16 + 16;

/// Where this gateway's nonces are issued and redeemed.
#[derive(Debug)]
pub enum Nonces {
    /// One process serves the database: nonces in memory.
    Local(NoncePool),
    /// Several replicas may serve the database: sealed nonces, redeemed in the store.
    Sealed(SealedNonces),
}

impl Nonces {
    /// A fresh nonce, at `now` (Unix seconds).
    pub fn issue(&self, now: i64) -> String {
        match self {
            Nonces::Local(pool) => pool.issue(),
            Nonces::Sealed(sealed) => sealed.issue(now),
        }
    }

    /// When `nonce` expires, if redeeming it at `now` is a write to the database: a sealed
    /// nonce that opens. `None` for nonces in memory and for any nonce that does not open
    /// (which [`Nonces::redeem`] refuses without asking the database).
    pub fn sealed_expiry(&self, nonce: &str, now: i64) -> Option<i64> {
        match self {
            Nonces::Local(_) => None,
            Nonces::Sealed(sealed) => sealed.open(nonce, now),
        }
    }

    /// Redeems `nonce` at `now`: true exactly once for a nonce this gateway (for `Sealed`,
    /// any replica of it) issued and that has not expired.
    pub async fn redeem(&self, nonce: &str, now: i64, store: &Store) -> Result<bool, StoreError> {
        match self {
            Nonces::Local(pool) => Ok(pool.consume(nonce)),
            Nonces::Sealed(sealed) => {
                let Some(expires_at) = sealed.open(nonce, now) else {
                    return Ok(false);
                };
                let nonce = nonce.to_owned();
                store
                    .call(move |s| s.redeem_nonce(&nonce, expires_at))
                    .await
            }
        }
    }
}

/// Nonces that carry their own proof of origin (see the module comment).
#[derive(Debug)]
pub struct SealedNonces {
    key: hmac::Key,
    rng: SystemRandom,
}

impl SealedNonces {
    /// Nonces sealed with `key`, which every replica of the PKI must share.
    pub fn new(key: hmac::Key) -> Self {
        Self {
            key,
            rng: SystemRandom::new(),
        }
    }

    fn issue(&self, now: i64) -> String {
        let mut bytes = [0u8; SEALED_LEN];
        bytes[..8].copy_from_slice(&now.to_be_bytes());
        // SystemRandom only fails if the OS RNG is unavailable; there is no safe fallback.
        self.rng
            .fill(&mut bytes[8..24])
            .unwrap_or_else(|_| panic!("operating system RNG failed"));
        let seal = hmac::sign(&self.key, &bytes[..24]);
        bytes[24..].copy_from_slice(&seal.as_ref()[..16]);
        B64.encode(bytes)
    }

    /// When `nonce` expires, if it is one of ours (the seal checks out) and still valid at
    /// `now`; `None` for anything else.
    fn open(&self, nonce: &str, now: i64) -> Option<i64> {
        let bytes = B64.decode(nonce).ok()?;
        if bytes.len() != SEALED_LEN {
            return None;
        }
        let seal = hmac::sign(&self.key, &bytes[..24]);
        // Constant time: a forger learns nothing from how long the comparison took.
        let differs = seal.as_ref()[..16]
            .iter()
            .zip(&bytes[24..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs != 0 {
            return None;
        }
        let issued = i64::from_be_bytes(bytes[..8].try_into().ok()?);
        let expires_at = issued.checked_add(SEALED_LIFETIME_SECS)?;
        (issued <= now + CLOCK_SKEW_SECS && now < expires_at).then_some(expires_at)
    }
}

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

    fn sealed(key: &[u8]) -> SealedNonces {
        SealedNonces::new(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    #[test]
    fn sealed_nonces_open_on_every_replica_of_the_key_and_only_while_fresh() {
        let (a, b) = (sealed(b"one pki"), sealed(b"one pki"));
        let n = a.issue(1_000);
        assert_eq!(n.len(), 54, "{n}");
        assert_eq!(b.open(&n, 1_000), Some(1_000 + SEALED_LIFETIME_SECS));
        assert_eq!(
            b.open(&n, 1_000 + SEALED_LIFETIME_SECS - 1),
            Some(1_000 + SEALED_LIFETIME_SECS)
        );
        assert_eq!(b.open(&n, 1_000 + SEALED_LIFETIME_SECS), None, "expired");
        assert_eq!(
            b.open(&n, 1_000 - CLOCK_SKEW_SECS - 1),
            None,
            "from the future"
        );
        assert_eq!(sealed(b"another pki").open(&n, 1_000), None, "another key");
        let mut forged = B64.decode(&n).unwrap();
        forged[3] ^= 1; // an issue time moved
        assert_eq!(b.open(&B64.encode(&forged), 1_000), None);
        assert_eq!(b.open("not base64!", 1_000), None);
        assert_eq!(
            b.open(&NoncePool::default().issue(), 1_000),
            None,
            "a local nonce"
        );
        assert_ne!(a.issue(1_000), n, "random bits differ");
    }

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
