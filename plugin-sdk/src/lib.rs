//! The acmegate plugin SDK: Rust bindings for the WIT contract in `wit/` and a trait per
//! extension point, so that a plugin is a plain Rust type.
//!
//! A challenge validator, with the `validator` feature:
//!
//! ```text
//! use acmegate_plugin_sdk::validator::*;
//!
//! struct Mine { /* parsed configuration */ }
//!
//! impl ValidatorPlugin for Mine {
//!     fn describe() -> PluginInfo { /* kind, name, version */ }
//!     fn configure(config: &str) -> Result<Self, String> { /* parse JSON */ }
//!     fn validate(&self, request: ChallengeRequest) -> Result<ValidationOutcome, PluginError> { .. }
//! }
//!
//! acmegate_plugin_sdk::validator_plugin!(Mine);
//! ```
//!
//! Errors of validators, deployers and notifiers are [`PluginError`]-s of their module
//! (`validator::PluginError`, ...): `Retryable` when the same call may succeed later,
//! `Permanent` when none can. A `String` converts into `Retryable`, so `?` on a
//! `Result<_, String>` keeps working (and means what a 0.1.0 plugin's error meant).
//!
//! Each call from the gateway runs in a fresh instance: `configure` runs first with the
//! operator's configuration, then the call, then the instance is dropped. So the value built by
//! `configure` lives for exactly one call, and nothing leaks between calls or accounts.

// The generated bindings and the export macros refer to this crate by its absolute path, which
// must also resolve inside the crate itself.
extern crate self as acmegate_plugin_sdk;

/// The contract version this SDK implements (`acmegate:plugin@0.2.0`). Gateways that speak
/// 0.2 load it; they also load plugins built against 0.1.0.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The runtime support the generated bindings use; not for plugin authors.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use std::any::Any;
    use std::cell::RefCell;

    // The configured plugin value of this instance. A component instance is single-threaded
    // and holds one plugin, so one slot of `dyn Any` serves every kind.
    thread_local! {
        static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    /// Stores the value `configure` built, replacing any previous one.
    pub fn set_instance<T: Any>(value: T) {
        INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(value)));
    }

    /// Runs `f` on the configured value, or fails when `configure` has not succeeded.
    pub fn with_instance<T: Any, R, E: From<String>>(
        f: impl FnOnce(&T) -> Result<R, E>,
    ) -> Result<R, E> {
        INSTANCE.with(|slot| {
            let slot = slot.borrow();
            match slot.as_ref().and_then(|v| v.downcast_ref::<T>()) {
                Some(value) => f(value),
                None => Err(E::from(
                    "plugin called before a successful configure".to_string(),
                )),
            }
        })
    }
}

/// `From<String>` and `From<&str>` for a kind's generated `PluginError`, as `Retryable`.
#[cfg(any(feature = "validator", feature = "notifier", feature = "deployer"))]
macro_rules! plugin_error_conversions {
    ($error:ty) => {
        impl From<String> for $error {
            fn from(message: String) -> Self {
                Self::Retryable(message)
            }
        }

        impl From<&str> for $error {
            fn from(message: &str) -> Self {
                Self::Retryable(message.to_string())
            }
        }
    };
}
#[cfg(any(feature = "validator", feature = "notifier", feature = "deployer"))]
pub(crate) use plugin_error_conversions;

/// What every world's copy of the contract's identifier types can do: its RFC 8555 name, and
/// the JSON form `{"type": "dns", "value": "a.example"}` (RFC 8555 §9.7.7) that plugins send
/// to their peers.
#[cfg(any(
    feature = "validator",
    feature = "issuer",
    feature = "notifier",
    feature = "deployer"
))]
macro_rules! identifier_helpers {
    ($identifier:ty, $kind:ty) => {
        impl $kind {
            /// The identifier type as RFC 8555 names it: `dns` or `ip`.
            pub fn as_str(&self) -> &'static str {
                match self {
                    Self::Dns => "dns",
                    Self::Ip => "ip",
                }
            }
        }

        impl ::serde::Serialize for $identifier {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeStruct;
                let mut object = s.serialize_struct("Identifier", 2)?;
                object.serialize_field("type", self.kind.as_str())?;
                object.serialize_field("value", &self.value)?;
                object.end()
            }
        }
    };
}
#[cfg(any(
    feature = "validator",
    feature = "issuer",
    feature = "notifier",
    feature = "deployer"
))]
pub(crate) use identifier_helpers;

/// Parses an operator's plugin configuration (the JSON text `configure` receives) into `T`,
/// or the message the gateway shows for a configuration it refuses.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))
}

#[cfg(feature = "validator")]
pub mod validator;

#[cfg(feature = "issuer")]
pub mod issuer;

#[cfg(feature = "notifier")]
pub mod notifier;

#[cfg(feature = "deployer")]
pub mod deployer;

/// Certificates in PEM and their serial numbers, for plugins that check what a target holds.
pub mod x509;

#[cfg(test)]
mod tests {
    #[test]
    fn a_configuration_parses_or_says_why_not() {
        #[derive(serde::Deserialize, Debug)]
        struct Config {
            url: String,
        }
        let config: Config = super::parse_config(r#"{"url": "https://x"}"#).unwrap();
        assert_eq!(config.url, "https://x");
        let refused = super::parse_config::<Config>("{}").unwrap_err();
        assert!(
            refused.starts_with("invalid configuration: missing field `url`"),
            "{refused}"
        );
    }
}
