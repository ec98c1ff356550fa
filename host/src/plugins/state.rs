//! The host side of the `state` capability: a small key-value store per plugin (by its
//! configured name, so a reloaded plugin keeps its state).
//!
//! In the gateway it lives in the store (`plugin_state`), so it survives restarts and is the
//! same for every replica; each value is sealed with AES-256-GCM under a key derived from the
//! CA key secret, with the plugin and key as associated data (a value cannot be moved to
//! another slot unnoticed). Without a store (unit tests, tools) it is kept in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ring::aead::LessSafeKey;

use super::bindings::wit::types::CapabilityError;
use crate::store::Store;

/// Limits of the capability: a small store for identities, counters and cursors, not a
/// database.
pub const STATE_MAX_KEYS: usize = 1024;
pub const STATE_MAX_KEY_BYTES: usize = 256;
pub const STATE_MAX_VALUE_BYTES: usize = 64 << 10;

/// Where plugin state is kept in the gateway: the store, and the key that seals values.
#[derive(Clone)]
pub struct StateBacking {
    pub store: Store,
    pub key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for StateBacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateBacking")
            .field("store", &self.store)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// One plugin's state.
#[derive(Debug)]
pub struct KvState {
    plugin: String,
    backing: Option<StateBacking>,
    memory: Mutex<BTreeMap<String, Vec<u8>>>,
}

fn failed(e: impl std::fmt::Display) -> CapabilityError {
    CapabilityError::Failed(format!("plugin state: {e}"))
}

impl KvState {
    fn aad(&self, key: &str) -> Vec<u8> {
        [self.plugin.as_bytes(), b"\0", key.as_bytes()].concat()
    }

    fn seal(
        &self,
        sealer: &LessSafeKey,
        key: &str,
        value: &[u8],
    ) -> Result<String, CapabilityError> {
        crate::ca::seal_at_rest(sealer, &self.aad(key), value).map_err(failed)
    }

    fn open(
        &self,
        sealer: &LessSafeKey,
        key: &str,
        stored: &str,
    ) -> Result<Vec<u8>, CapabilityError> {
        crate::ca::open_at_rest(sealer, &self.aad(key), stored, &format!("value of {key:?}"))
            .map(|plain| plain.as_slice().to_vec())
            .map_err(failed)
    }

    fn memory(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>>, CapabilityError> {
        self.memory.lock().map_err(|_| failed("poisoned"))
    }

    /// Runs a blocking store call off the async workers.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store, &str) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, CapabilityError> {
        let backing = self.backing.clone().ok_or_else(|| failed("no store"))?;
        let plugin = self.plugin.clone();
        backing
            .store
            .call(move |s| f(s, &plugin))
            .await
            .map_err(failed)
    }

    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, CapabilityError> {
        let Some(backing) = &self.backing else {
            return Ok(self.memory()?.get(&key).cloned());
        };
        let sealer = backing.key.clone();
        let k = key.clone();
        match self.db(move |s, p| s.plugin_state_get(p, &k)).await? {
            Some(stored) => self.open(&sealer, &key, &stored).map(Some),
            None => Ok(None),
        }
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), CapabilityError> {
        if key.len() > STATE_MAX_KEY_BYTES || value.len() > STATE_MAX_VALUE_BYTES {
            return Err(CapabilityError::Invalid(format!(
                "keys up to {STATE_MAX_KEY_BYTES} bytes, values up to {STATE_MAX_VALUE_BYTES}"
            )));
        }
        let full = || CapabilityError::Invalid(format!("state is full ({STATE_MAX_KEYS} keys)"));
        let Some(backing) = &self.backing else {
            let mut map = self.memory()?;
            if map.len() >= STATE_MAX_KEYS && !map.contains_key(&key) {
                return Err(full());
            }
            map.insert(key, value);
            return Ok(());
        };
        let sealed = self.seal(&backing.key, &key, &value)?;
        let now = chrono::Utc::now().timestamp();
        let stored = self
            .db(move |s, p| s.plugin_state_put(p, &key, &sealed, STATE_MAX_KEYS as i64, now))
            .await?;
        if stored {
            Ok(())
        } else {
            Err(full())
        }
    }

    pub async fn delete(&self, key: String) -> Result<(), CapabilityError> {
        if self.backing.is_none() {
            self.memory()?.remove(&key);
            return Ok(());
        }
        self.db(move |s, p| s.plugin_state_delete(p, &key)).await
    }

    pub async fn keys(&self, prefix: String) -> Result<Vec<String>, CapabilityError> {
        if self.backing.is_none() {
            let map = self.memory()?;
            return Ok(map
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect());
        }
        self.db(move |s, p| s.plugin_state_keys(p, &prefix)).await
    }
}

/// The state of every plugin of a runtime, by plugin name.
#[derive(Debug, Default)]
pub(crate) struct KvRegistry {
    backing: Option<StateBacking>,
    plugins: Mutex<HashMap<String, Arc<KvState>>>,
}

impl KvRegistry {
    pub(crate) fn new(backing: Option<StateBacking>) -> Self {
        Self {
            backing,
            plugins: Mutex::default(),
        }
    }

    pub(crate) fn for_plugin(&self, name: &str) -> Arc<KvState> {
        // A poisoned lock only means another thread panicked while inserting; the map is
        // still consistent (insertions are single operations).
        let mut map = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(KvState {
                    plugin: name.to_string(),
                    backing: self.backing.clone(),
                    memory: Mutex::default(),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    fn sealer() -> Arc<LessSafeKey> {
        let key = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[9u8; 32]).unwrap();
        Arc::new(LessSafeKey::new(key))
    }

    /// Persisted state survives a new runtime (restart), stays per plugin, is sealed in the
    /// database, keeps its limits, and a value moved to another key does not open.
    #[tokio::test]
    async fn stored_state_is_sealed_per_plugin_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&acmegate_testkit::db::fresh_sqlite_url(dir.path())).unwrap();
        let backing = StateBacking {
            store: store.clone(),
            key: sealer(),
        };
        let first = KvRegistry::new(Some(backing.clone()));
        let a = first.for_plugin("a");
        a.set("identity".into(), b"secret key".to_vec())
            .await
            .unwrap();
        a.set("cn/x".into(), b"1".to_vec()).await.unwrap();
        a.set("cn/x".into(), b"2".to_vec()).await.unwrap();
        assert_eq!(a.keys("cn/".into()).await.unwrap(), ["cn/x"]);
        let stored = store.plugin_state_get("a", "identity").unwrap().unwrap();
        assert!(!B64
            .decode(&stored)
            .unwrap()
            .windows(10)
            .any(|w| w == b"secret key"));

        let restarted = KvRegistry::new(Some(backing));
        let a2 = restarted.for_plugin("a");
        assert_eq!(
            a2.get("identity".into()).await.unwrap().unwrap(),
            b"secret key"
        );
        assert_eq!(a2.get("cn/x".into()).await.unwrap().unwrap(), b"2");
        assert_eq!(
            restarted
                .for_plugin("b")
                .get("identity".into())
                .await
                .unwrap(),
            None
        );

        // A sealed value copied under another key is refused, not returned.
        store
            .plugin_state_put("a", "moved", &stored, 10, 0)
            .unwrap();
        assert!(a2.get("moved".into()).await.is_err());
        a2.delete("moved".into()).await.unwrap();
        assert!(a2
            .set("k".into(), vec![0; STATE_MAX_VALUE_BYTES + 1])
            .await
            .is_err());
    }

    #[tokio::test]
    async fn memory_state_keeps_limits() {
        let kv = KvRegistry::new(None).for_plugin("m");
        for i in 0..STATE_MAX_KEYS {
            kv.set(format!("k{i:04}"), vec![1]).await.unwrap();
        }
        assert!(matches!(
            kv.set("one-more".into(), vec![1]).await,
            Err(CapabilityError::Invalid(m)) if m.contains("full")
        ));
        kv.set("k0000".into(), vec![2]).await.unwrap();
        assert_eq!(kv.keys("k000".into()).await.unwrap().len(), 10);
    }
}
