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
