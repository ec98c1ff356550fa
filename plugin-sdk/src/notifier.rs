//! Bindings and the [`NotifierPlugin`] trait for the `notifier` world.

wit_bindgen::generate!({
    path: "wit",
    world: "notifier",
    runtime_path: "::acmegate_plugin_sdk::__private::wit_bindgen::rt",
    pub_export_macro: true,
    export_macro_name: "__export_notifier",
    default_bindings_module: "::acmegate_plugin_sdk::notifier",
});

pub use self::acmegate::plugin::types::{
    CapabilityError, Identifier, IdentifierType, NotifierInfo, PluginError, PluginInfo, PluginKind,
};
pub use self::acmegate::plugin::{clock, http, log, random, secrets, smtp, state};

crate::plugin_error_conversions!(PluginError);
crate::identifier_helpers!(Identifier, IdentifierType);
pub use self::exports::acmegate::plugin::notifications::{Certificate, Event, EventType, Severity};

/// A severity's rank, for filters: info 0, warning 1, critical 2.
pub fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

/// The rank of an operator's `min_severity` setting (`info`, the default when absent,
/// `warning` or `critical`), or the message that names the bad value.
pub fn min_severity_rank(setting: Option<&str>) -> Result<u8, String> {
    match setting {
        None | Some("info") => Ok(0),
        Some("warning") => Ok(1),
        Some("critical") => Ok(2),
        Some(other) => Err(format!(
            "min_severity {other:?} is not info, warning or critical"
        )),
    }
}

/// A notifier. Implement this and name the type in [`notifier_plugin!`].
pub trait NotifierPlugin: Sized + 'static {
    /// What the plugin is; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the plugin from the operator's configuration (JSON text).
    fn configure(config: &str) -> Result<Self, String>;

    /// Delivers one event; an error is logged and counted by the gateway (which does not
    /// retry: a notifier that must not lose events keeps its own queue in `state`).
    fn notify(&self, event: Event) -> Result<(), PluginError>;
}

/// Exports a [`NotifierPlugin`] type as the plugin's component exports.
#[macro_export]
macro_rules! notifier_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct __AcmegateNotifier;

            impl $crate::notifier::exports::acmegate::plugin::plugin::Guest for __AcmegateNotifier {
                fn describe() -> $crate::notifier::PluginInfo {
                    <$plugin as $crate::notifier::NotifierPlugin>::describe()
                }

                fn configure(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let value = <$plugin as $crate::notifier::NotifierPlugin>::configure(&config)?;
                    $crate::__private::set_instance::<$plugin>(value);
                    Ok(())
                }
            }

            impl $crate::notifier::exports::acmegate::plugin::notifications::Guest
                for __AcmegateNotifier
            {
                fn notify(
                    event: $crate::notifier::Event,
                ) -> ::core::result::Result<(), $crate::notifier::PluginError> {
                    $crate::__private::with_instance(|p: &$plugin| {
                        $crate::notifier::NotifierPlugin::notify(p, event)
                    })
                }
            }

            $crate::notifier::__export_notifier!(__AcmegateNotifier);
        };
    };
}
