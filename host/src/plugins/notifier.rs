//! Notifier plugins: loading with the describe + configure canary, and the `notify` call.

use std::sync::Arc;

use super::bindings::notifier::exports::acmegate::plugin::notifications as wit_notify;
use super::bindings::notifier::NotifierPre;
use super::limits::NOTIFIER_LIMITS;
use super::live::Live;
use super::runtime::{PluginRuntime, PluginSpec, PluginStats, PluginStatus};
use super::validator::identifier_to_wit;
use super::{PluginError, PluginInfo};
use crate::acme::types::Identifier;

pub use wit_notify::{EventType, Severity};

/// A loaded notifier. Cheap to clone; clones share the plugin and see its reloads.
#[derive(Clone, Debug)]
pub struct NotifierPlugin {
    current: Live<Loaded>,
}

type Loaded = super::live::Loaded<NotifierPre<super::capabilities::HostState>>;

/// The certificate an event is about.
#[derive(Clone, Debug)]
pub struct EventCertificate {
    pub serial: String,
    pub identifiers: Vec<Identifier>,
    pub not_before: i64,
    pub not_after: i64,
    /// The owning account's URL; empty for certificates of no account.
    pub account: String,
}

/// One event for the notifiers.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventType,
    pub severity: Severity,
    pub certificate: Option<EventCertificate>,
    pub days_left: Option<i32>,
    pub message: String,
}

impl PluginRuntime {
    /// Loads a notifier: compile (or cache), version check, link, then `describe` (must say
    /// `notifier`) and `configure` as a canary.
    pub async fn load_notifier(&self, spec: PluginSpec) -> Result<NotifierPlugin, PluginError> {
        Ok(NotifierPlugin {
            current: Live::new(self.load_notifier_version(spec).await?),
        })
    }

    /// Loads a new version with the same canary and swaps it in; on error the old one stays.
    pub async fn reload_notifier(
        &self,
        plugin: &NotifierPlugin,
        spec: PluginSpec,
    ) -> Result<(), PluginError> {
        plugin.current.swap(self.load_notifier_version(spec).await?);
        Ok(())
    }

    async fn load_notifier_version(&self, spec: PluginSpec) -> Result<Arc<Loaded>, PluginError> {
        self.load_version::<super::bindings::NotifierWorld>(spec, NOTIFIER_LIMITS)
            .await
    }
}

impl NotifierPlugin {
    fn version(&self) -> Arc<Loaded> {
        self.current.current()
    }

    /// What the current version said about itself at load.
    pub fn info(&self) -> PluginInfo {
        self.current.info()
    }

    /// Counters of the current version since it was loaded.
    pub fn stats(&self) -> PluginStats {
        self.current.stats()
    }

    /// File hash, generation, load time, counters and last error of the current version.
    pub fn status(&self) -> PluginStatus {
        self.current.status()
    }

    /// Delivers `event` in a fresh, configured instance. The inner `Err` is the plugin's own
    /// delivery failure; the outer one a fault of the call.
    pub async fn notify(&self, event: &Event) -> Result<Result<(), String>, PluginError> {
        let wit_event = wit_notify::Event {
            event_type: event.kind,
            severity: event.severity,
            certificate: event.certificate.as_ref().map(|c| wit_notify::Certificate {
                serial: c.serial.clone(),
                identifiers: c.identifiers.iter().map(identifier_to_wit).collect(),
                not_before: c.not_before,
                not_after: c.not_after,
                account: c.account.clone(),
            }),
            days_left: event.days_left,
            message: event.message.clone(),
        };
        let version = self.version();
        let loaded = &version;
        loaded
            .calls
            .call("notify", async move |store| {
                let bindings = loaded.pre.instantiate_async(&mut *store).await?;
                let configured = bindings
                    .acmegate_plugin_plugin()
                    .call_configure(&mut *store, &loaded.calls.config)
                    .await?;
                if let Err(message) = configured {
                    return Ok(Ok(Err(format!(
                        "configure failed in a fresh instance: {message}"
                    ))));
                }
                let delivered = bindings
                    .acmegate_plugin_notifications()
                    .call_notify(&mut *store, &wit_event)
                    .await?;
                Ok(Ok(delivered))
            })
            .await
    }
}
