//! Notifier plugins: loading with the describe + configure canary, and the `notify` call.

use super::bindings::notifier::exports::acmegate::plugin::notifications as wit_notify;
use super::bindings::Versioned;
use super::compat;
use super::limits::NOTIFIER_LIMITS;
use super::validator::identifier_to_wit;
use super::PluginError;
use crate::acme::types::Identifier;

pub use wit_notify::{EventType, Severity};

super::live::plugin_handle!(
    /// A loaded notifier.
    NotifierPlugin,
    super::bindings::NotifierWorld,
    NOTIFIER_LIMITS,
    load_notifier,
    reload_notifier
);

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

impl NotifierPlugin {
    /// Delivers `event` in a fresh, configured instance. `PluginError::Plugin` is the plugin's
    /// own delivery failure (kept as its last error, not a fault); the others are faults of the
    /// call or a refused configuration.
    pub async fn notify(&self, event: &Event) -> Result<(), PluginError> {
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
        self.version()
            .call("notify", async |bindings, store| match bindings {
                Versioned::Current(b) => Ok(b
                    .acmegate_plugin_notifications()
                    .call_notify(store, &wit_event)
                    .await?
                    .map_err(compat::failure)),
                Versioned::V0_1(b) => compat::notify(b, store, &wit_event).await,
            })
            .await
    }
}
