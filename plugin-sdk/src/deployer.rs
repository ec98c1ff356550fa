//! Bindings and the [`DeployerPlugin`] trait for the `target-deployer` world.

wit_bindgen::generate!({
    path: "wit",
    world: "target-deployer",
    runtime_path: "::acmegate_plugin_sdk::__private::wit_bindgen::rt",
    pub_export_macro: true,
    export_macro_name: "__export_target_deployer",
    default_bindings_module: "::acmegate_plugin_sdk::deployer",
});

pub use self::acmegate::plugin::types::{
    CapabilityError, DeployerInfo, Identifier, IdentifierType, PluginInfo, PluginKind,
};
pub use self::acmegate::plugin::{clock, dns, http, log, random, secrets, state, tls_probe, zmq};
pub use self::exports::acmegate::plugin::deployer::{Deployment, Target, VerifyOutcome};

/// A target deployer. Implement this and name the type in [`deployer_plugin!`].
///
/// The gateway calls `deploy` after a certificate whose names match one of the operator's
/// `[[targets]]` for this plugin is issued, then `verify`. Both run in a fresh instance, so a
/// deployer that needs to remember what it pushed keeps it in `state`.
pub trait DeployerPlugin: Sized + 'static {
    /// What the plugin is; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the plugin from the operator's configuration (JSON text).
    fn configure(config: &str) -> Result<Self, String>;

    /// Installs the certificate on `deployment.target` (its name and the operator's `config`
    /// for it, JSON). `Ok` carries a short receipt for the audit log; `Err` says why, and the
    /// gateway retries with backoff.
    fn deploy(&self, deployment: Deployment) -> Result<String, String>;

    /// Checks that `target` serves the certificate with `serial` (lowercase hex).
    fn verify(&self, target: Target, serial: String) -> Result<VerifyOutcome, String>;
}

/// Exports a [`DeployerPlugin`] type as the plugin's component exports.
#[macro_export]
macro_rules! deployer_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct __AcmegateDeployer;

            impl $crate::deployer::exports::acmegate::plugin::plugin::Guest for __AcmegateDeployer {
                fn describe() -> $crate::deployer::PluginInfo {
                    <$plugin as $crate::deployer::DeployerPlugin>::describe()
                }

                fn configure(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let value = <$plugin as $crate::deployer::DeployerPlugin>::configure(&config)?;
                    $crate::__private::set_instance::<$plugin>(value);
                    Ok(())
                }
            }

            impl $crate::deployer::exports::acmegate::plugin::deployer::Guest
                for __AcmegateDeployer
            {
                fn deploy(
                    deployment: $crate::deployer::Deployment,
                ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    $crate::__private::with_instance(|p: &$plugin| {
                        $crate::deployer::DeployerPlugin::deploy(p, deployment)
                    })
                }

                fn verify(
                    target: $crate::deployer::Target,
                    serial: ::std::string::String,
                ) -> ::core::result::Result<
                    $crate::deployer::VerifyOutcome,
                    ::std::string::String,
                > {
                    $crate::__private::with_instance(|p: &$plugin| {
                        $crate::deployer::DeployerPlugin::verify(p, target, serial)
                    })
                }
            }

            $crate::deployer::__export_target_deployer!(__AcmegateDeployer);
        };
    };
}
