//! Bindings and the [`ValidatorPlugin`] trait for the `challenge-validator` world.

wit_bindgen::generate!({
    path: "wit",
    world: "challenge-validator",
    runtime_path: "::acmegate_plugin_sdk::__private::wit_bindgen::rt",
    pub_export_macro: true,
    export_macro_name: "__export_challenge_validator",
    default_bindings_module: "::acmegate_plugin_sdk::validator",
});

pub use self::acmegate::plugin::types::{
    CapabilityError, Identifier, IdentifierType, PluginError, PluginInfo, PluginKind, Problem,
    ProblemType, ValidatorInfo,
};
pub use self::acmegate::plugin::{clock, dns, http, log, random, secrets, state, tls_probe};

crate::plugin_error_conversions!(PluginError);
crate::identifier_helpers!(Identifier, IdentifierType);
pub use self::exports::acmegate::plugin::validator::{
    ChallengeRequest, OrderRequest, PolicyDecision, ValidationOutcome,
};

/// A challenge validator. Implement this and name the type in [`validator_plugin!`].
pub trait ValidatorPlugin: Sized + 'static {
    /// What the plugin is; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the plugin from the operator's configuration (JSON text). The error tells the
    /// operator what is wrong.
    fn configure(config: &str) -> Result<Self, String>;

    /// Decides a challenge (RFC 8555 §7.5.1). `Err` means the plugin failed, not the client.
    fn validate(&self, request: ChallengeRequest) -> Result<ValidationOutcome, PluginError>;

    /// The newOrder policy (RFC 8555 §7.4); only called when `describe` sets
    /// `new_order_policy`. Allows everything unless overridden.
    fn check_new_order(&self, order: OrderRequest) -> Result<PolicyDecision, PluginError> {
        let _ = order;
        Ok(PolicyDecision::Allow)
    }
}

/// A problem for one identifier, as [`PolicyDecision::Refuse`] and
/// [`ValidationOutcome::Invalid`] carry.
pub fn problem(kind: ProblemType, identifier: &Identifier, detail: impl Into<String>) -> Problem {
    Problem {
        kind,
        detail: detail.into(),
        identifier: Some(identifier.clone()),
    }
}

/// Exports a [`ValidatorPlugin`] type as the plugin's component exports.
#[macro_export]
macro_rules! validator_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct __AcmegateValidator;

            impl $crate::validator::exports::acmegate::plugin::plugin::Guest for __AcmegateValidator {
                fn describe() -> $crate::validator::PluginInfo {
                    <$plugin as $crate::validator::ValidatorPlugin>::describe()
                }

                fn configure(config: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                    let value = <$plugin as $crate::validator::ValidatorPlugin>::configure(&config)?;
                    $crate::__private::set_instance::<$plugin>(value);
                    Ok(())
                }
            }

            impl $crate::validator::exports::acmegate::plugin::validator::Guest for __AcmegateValidator {
                fn validate(
                    request: $crate::validator::ChallengeRequest,
                ) -> ::core::result::Result<$crate::validator::ValidationOutcome, $crate::validator::PluginError> {
                    $crate::__private::with_instance::<$plugin, _, _>(|p| {
                        $crate::validator::ValidatorPlugin::validate(p, request)
                    })
                }

                fn check_new_order(
                    order: $crate::validator::OrderRequest,
                ) -> ::core::result::Result<$crate::validator::PolicyDecision, $crate::validator::PluginError> {
                    $crate::__private::with_instance::<$plugin, _, _>(|p| {
                        $crate::validator::ValidatorPlugin::check_new_order(p, order)
                    })
                }
            }

            $crate::validator::__export_challenge_validator!(__AcmegateValidator);
        };
    };
}
