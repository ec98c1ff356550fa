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
    CapabilityError, DeployerInfo, Identifier, IdentifierType, PluginError, PluginInfo, PluginKind,
};
pub use self::acmegate::plugin::{
    clock, commands, files, http, log, random, secrets, state, tls_probe,
};

crate::plugin_error_conversions!(PluginError);
crate::identifier_helpers!(Identifier, IdentifierType);
pub use self::exports::acmegate::plugin::deployer::{Deployment, Target, VerifyOutcome};

/// What a target that serves the serial `served` (any spelling: `00:0A:BC`, `abc`) says of the
/// deployed `expected`: `Deployed`, or `Mismatch` naming what it serves.
pub fn compare_serials(served: &str, expected: &str) -> VerifyOutcome {
    let served = crate::x509::normalize_serial(served);
    if served == crate::x509::normalize_serial(expected) {
        VerifyOutcome::Deployed
    } else {
        VerifyOutcome::Mismatch(format!("serial {served}"))
    }
}

/// Verifies by a TLS handshake with `host`:`port` (SNI `server_name`, else the host; the
/// `tls_probe_hosts` grant) that the target serves `serial`: `Missing` when it shows no
/// certificate, else the comparison of its leaf's serial ([`compare_serials`]).
pub fn verify_by_probe(
    host: &str,
    port: u16,
    server_name: Option<&str>,
    serial: &str,
    timeout_ms: u32,
) -> Result<VerifyOutcome, String> {
    let result = tls_probe::probe(&tls_probe::ProbeRequest {
        host: host.to_string(),
        port,
        server_name: server_name.unwrap_or(host).to_string(),
        alpn: Vec::new(),
        timeout_ms,
    })
    .map_err(|e| format!("TLS probe of {host}:{port} failed: {e:?}"))?;
    let Some(leaf) = result.chain.first() else {
        return Ok(VerifyOutcome::Missing);
    };
    let served =
        crate::x509::serial_hex(leaf).ok_or("the served certificate is not readable DER")?;
    Ok(compare_serials(&served, serial))
}

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
    /// for it, JSON). `Ok` carries a short receipt for the audit log; `Err` says why:
    /// `Retryable` and the gateway retries with backoff, `Permanent` (e.g. a target `config`
    /// this deployer cannot use) and the deployment fails at once.
    fn deploy(&self, deployment: Deployment) -> Result<String, PluginError>;

    /// Checks that `target` serves the certificate with `serial` (lowercase hex).
    fn verify(&self, target: Target, serial: String) -> Result<VerifyOutcome, PluginError>;
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
                ) -> ::core::result::Result<::std::string::String, $crate::deployer::PluginError> {
                    $crate::__private::with_instance(|p: &$plugin| {
                        $crate::deployer::DeployerPlugin::deploy(p, deployment)
                    })
                }

                fn verify(
                    target: $crate::deployer::Target,
                    serial: ::std::string::String,
                ) -> ::core::result::Result<
                    $crate::deployer::VerifyOutcome,
                    $crate::deployer::PluginError,
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
