//! The admin's plugin switches (`plugin_switches`): which plugins are off, for every replica
//! and across restarts.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::schema::plugin_switches;
use super::{Event, Result, Store};

/// The admin's switches by plugin name: `true` on, `false` off. A plugin without an entry was
/// never switched.
pub type PluginSwitches = BTreeMap<String, bool>;

impl Store {
    /// Records that `name` was switched on or off at `at`, with its audit entry.
    pub fn set_plugin_enabled(&self, name: &str, enabled: bool, at: i64) -> Result<()> {
        let name = name.to_owned();
        let action = if enabled {
            "plugin.enable"
        } else {
            "plugin.disable"
        };
        let event = Event::new(action, format!("plugin/{name}"), serde_json::json!({}));
        self.write_audited(event, move |c| {
            diesel::delete(plugin_switches::table.find(&name)).execute(c)?;
            diesel::insert_into(plugin_switches::table)
                .values((
                    plugin_switches::name.eq(&name),
                    plugin_switches::enabled.eq(enabled),
                    plugin_switches::changed_at.eq(at),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// Every switch an admin made.
    pub fn plugin_switches(&self) -> Result<PluginSwitches> {
        Ok(plugin_switches::table
            .select((plugin_switches::name, plugin_switches::enabled))
            .load::<(String, bool)>(&mut *self.conn()?)?
            .into_iter()
            .collect())
    }
}
