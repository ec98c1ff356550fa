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
//!     fn validate(&self, request: ChallengeRequest) -> Result<ValidationOutcome, String> { .. }
//! }
//!
//! acmegate_plugin_sdk::validator_plugin!(Mine);
//! ```
//!
//! Each call from the gateway runs in a fresh instance: `configure` runs first with the
//! operator's configuration, then the call, then the instance is dropped. So the value built by
//! `configure` lives for exactly one call, and nothing leaks between calls or accounts.

// The generated bindings and the export macros refer to this crate by its absolute path, which
// must also resolve inside the crate itself.
extern crate self as acmegate_plugin_sdk;

/// The contract version this SDK implements; the gateway refuses plugins whose major differs.
pub const CONTRACT_VERSION: &str = "0.1.0";

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
    pub fn with_instance<T: Any, R>(f: impl FnOnce(&T) -> Result<R, String>) -> Result<R, String> {
        INSTANCE.with(|slot| {
            let slot = slot.borrow();
            match slot.as_ref().and_then(|v| v.downcast_ref::<T>()) {
                Some(value) => f(value),
                None => Err("plugin called before a successful configure".to_string()),
            }
        })
    }
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
