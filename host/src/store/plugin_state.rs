//! Rows of the plugins' key-value state. Values arrive sealed (see `plugins::state`); this
//! layer only keeps them.

use diesel::prelude::*;

use super::schema::plugin_state;
use super::{Result, Store};

impl Store {
    pub fn plugin_state_get(&self, plugin: &str, key: &str) -> Result<Option<String>> {
        Ok(plugin_state::table
            .find((plugin, key))
            .select(plugin_state::value)
            .first(&mut *self.conn()?)
            .optional()?)
    }

    /// Stores `value` under `key`, replacing any old one, unless the plugin already has
    /// `max_keys` other keys; returns whether it stored.
    pub fn plugin_state_put(
        &self,
        plugin: &str,
        key: &str,
        value: &str,
        max_keys: i64,
        now: i64,
    ) -> Result<bool> {
        let (plugin, key, value) = (plugin.to_owned(), key.to_owned(), value.to_owned());
        self.write(move |c| {
            let existed =
                diesel::delete(plugin_state::table.find((&plugin, &key))).execute(c)? == 1;
            if !existed {
                let count: i64 = plugin_state::table
                    .filter(plugin_state::plugin.eq(&plugin))
                    .count()
                    .get_result(c)?;
                if count >= max_keys {
                    return Ok(false);
                }
            }
            diesel::insert_into(plugin_state::table)
                .values((
                    plugin_state::plugin.eq(&plugin),
                    plugin_state::key.eq(&key),
                    plugin_state::value.eq(&value),
                    plugin_state::updated_at.eq(now),
                ))
                .execute(c)?;
            Ok(true)
        })
    }

    pub fn plugin_state_delete(&self, plugin: &str, key: &str) -> Result<()> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.write(move |c| {
            diesel::delete(plugin_state::table.find((&plugin, &key))).execute(c)?;
            Ok(())
        })
    }

    /// The plugin's keys starting with `prefix`, sorted.
    pub fn plugin_state_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>> {
        let keys: Vec<String> = plugin_state::table
            .filter(plugin_state::plugin.eq(plugin))
            .select(plugin_state::key)
            .order(plugin_state::key)
            .load(&mut *self.conn()?)?;
        Ok(keys.into_iter().filter(|k| k.starts_with(prefix)).collect())
    }
}
