//! Bindings and the [`IssuerPlugin`] trait for the `issuer-connector` world.

wit_bindgen::generate!({
    path: "wit",
    world: "issuer-connector",
    runtime_path: "::acmegate_plugin_sdk::__private::wit_bindgen::rt",
    pub_export_macro: true,
    export_macro_name: "__export_issuer_connector",
    default_bindings_module: "::acmegate_plugin_sdk::issuer",
});

pub use self::acmegate::plugin::types::{
    CapabilityError, Identifier, IdentifierType, IssuerInfo, PluginInfo, PluginKind, Problem,
    ProblemType,
};
crate::identifier_helpers!(Identifier, IdentifierType);
pub use self::acmegate::plugin::{clock, http, log, random, secrets, state, zmq};
pub use self::exports::acmegate::plugin::issuer::{
    IssueOutcome, IssueRequest, IssuerError, PendingIssue, RevokeRequest,
};

/// An issuer connector. Implement this and name the type in [`issuer_plugin!`].
///
/// Errors are [`IssuerError`]s: `Rejected` for a request the CA refuses for good (the client
/// sees the problem), `Unavailable(seconds)` for an outage worth retrying, `Failed` for the
/// rest.
pub trait IssuerPlugin: Sized + 'static {
    /// What the plugin is; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the plugin from the operator's configuration (JSON text).
    fn configure(config: &str) -> Result<Self, String>;

    /// Turns a checked CSR into a chain, or accepts it for later (`Pending`).
    fn issue(&self, request: IssueRequest) -> Result<IssueOutcome, IssuerError>;

    /// Asks about a request answered `Pending` earlier. Without deferred issuance there is
    /// nothing to poll.
    fn poll(&self, handle: String) -> Result<IssueOutcome, IssuerError> {
        Err(IssuerError::Failed(format!("unknown handle {handle:?}")))
    }

    /// Revokes (only called when `describe` says `revoke: true`).
    fn revoke(&self, request: RevokeRequest) -> Result<(), IssuerError> {
        let _ = request;
        Err(IssuerError::Failed("revocation is not supported".into()))
    }

    /// The CA chain, PEM (intermediates, then the root).
    fn ca_chain(&self) -> Result<String, IssuerError>;

    /// The current CRL, DER (only called when `describe` says `crl: true`).
    fn crl(&self) -> Result<Vec<u8>, IssuerError> {
        Err(IssuerError::Failed("no CRL".into()))
    }
}

/// Exports an [`IssuerPlugin`] type as the plugin's component exports.
#[macro_export]
macro_rules! issuer_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct __AcmegateIssuer;

            impl $crate::issuer::exports::acmegate::plugin::plugin::Guest for __AcmegateIssuer {
                fn describe() -> $crate::issuer::PluginInfo {
                    <$plugin as $crate::issuer::IssuerPlugin>::describe()
                }

                fn configure(config: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                    let value = <$plugin as $crate::issuer::IssuerPlugin>::configure(&config)?;
                    $crate::__private::set_instance::<$plugin>(value);
                    Ok(())
                }
            }

            impl $crate::issuer::exports::acmegate::plugin::issuer::Guest for __AcmegateIssuer {
                fn issue(
                    request: $crate::issuer::IssueRequest,
                ) -> ::core::result::Result<$crate::issuer::IssueOutcome, $crate::issuer::IssuerError> {
                    $crate::issuer::__with(|p: &$plugin| $crate::issuer::IssuerPlugin::issue(p, request))
                }

                fn poll(
                    handle: ::std::string::String,
                ) -> ::core::result::Result<$crate::issuer::IssueOutcome, $crate::issuer::IssuerError> {
                    $crate::issuer::__with(|p: &$plugin| $crate::issuer::IssuerPlugin::poll(p, handle))
                }

                fn revoke(
                    request: $crate::issuer::RevokeRequest,
                ) -> ::core::result::Result<(), $crate::issuer::IssuerError> {
                    $crate::issuer::__with(|p: &$plugin| $crate::issuer::IssuerPlugin::revoke(p, request))
                }

                fn ca_chain() -> ::core::result::Result<::std::string::String, $crate::issuer::IssuerError> {
                    $crate::issuer::__with(|p: &$plugin| $crate::issuer::IssuerPlugin::ca_chain(p))
                }

                fn crl() -> ::core::result::Result<::std::vec::Vec<u8>, $crate::issuer::IssuerError> {
                    $crate::issuer::__with(|p: &$plugin| $crate::issuer::IssuerPlugin::crl(p))
                }
            }

            $crate::issuer::__export_issuer_connector!(__AcmegateIssuer);
        };
    };
}

/// Runs `f` on the configured plugin; a call before `configure` is a `Failed` error.
#[doc(hidden)]
pub fn __with<T: 'static, R>(
    f: impl FnOnce(&T) -> Result<R, IssuerError>,
) -> Result<R, IssuerError> {
    let mut outcome = None;
    let configured = crate::__private::with_instance::<T, (), String>(|p| {
        outcome = Some(f(p));
        Ok(())
    });
    match (configured, outcome) {
        (_, Some(result)) => result,
        (Err(message), None) => Err(IssuerError::Failed(message)),
        (Ok(()), None) => Err(IssuerError::Failed("plugin produced no answer".into())),
    }
}
