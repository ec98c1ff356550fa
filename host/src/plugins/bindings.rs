//! Host-side bindings generated from the WIT package in `plugin-sdk/wit/`.
//!
//! The capability interfaces are generated once, from the `host-capabilities` world, and every
//! extension-point world reuses them through `with`, so one set of host traits serves all
//! plugin kinds.

/// The imports every plugin may use (`log`, `clock`, ...) and the shared `types`.
pub(crate) mod capabilities {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "host-capabilities",
        imports: { default: async },
    });
}

/// What loading needs of an extension-point world: its name, its linked pre-instance, and the
/// describe + configure canary every world exports the same way.
pub(crate) trait World {
    /// The WIT world name (`challenge-validator`, ...), which `describe` must echo.
    const NAME: &'static str;
    type Pre: Send + Sync + 'static;
    /// The exports of one instance.
    type Bindings: Send + Sync;

    fn pre(
        instance: wasmtime::component::InstancePre<super::capabilities::HostState>,
    ) -> wasmtime::Result<Self::Pre>;

    /// Instantiates in `store` and calls `describe`, then `configure(config)`.
    fn describe_and_configure(
        pre: &Self::Pre,
        store: &mut wasmtime::Store<super::capabilities::HostState>,
        config: &str,
    ) -> impl std::future::Future<
        Output = wasmtime::Result<(wit::types::PluginInfo, Result<(), String>)>,
    > + Send;

    /// Instantiates in `store` and calls `configure(config)`, as every call's fresh instance
    /// starts. The inner `Err` is the plugin refusing its configuration.
    fn instantiate_configured(
        pre: &Self::Pre,
        store: &mut wasmtime::Store<super::capabilities::HostState>,
        config: &str,
    ) -> impl std::future::Future<Output = wasmtime::Result<(Self::Bindings, Result<(), String>)>> + Send;
}

/// Bindings for one extension-point world, reusing the capability interfaces above, and its
/// [`World`] marker type.
macro_rules! world {
    ($(#[$doc:meta])* $module:ident, $world:tt, $marker:ident, $bindings:ident, $pre:ident) => {
        $(#[$doc])*
        pub(crate) struct $marker;

        impl World for $marker {
            const NAME: &'static str = $world;
            type Pre = $module::$pre<super::capabilities::HostState>;
            type Bindings = $module::$bindings;

            fn pre(
                instance: wasmtime::component::InstancePre<super::capabilities::HostState>,
            ) -> wasmtime::Result<Self::Pre> {
                $module::$pre::new(instance)
            }

            async fn describe_and_configure(
                pre: &Self::Pre,
                store: &mut wasmtime::Store<super::capabilities::HostState>,
                config: &str,
            ) -> wasmtime::Result<(wit::types::PluginInfo, Result<(), String>)> {
                let bindings = pre.instantiate_async(&mut *store).await?;
                let plugin = bindings.acmegate_plugin_plugin();
                let info = plugin.call_describe(&mut *store).await?;
                let configured = plugin.call_configure(&mut *store, config).await?;
                Ok((info, configured))
            }

            async fn instantiate_configured(
                pre: &Self::Pre,
                store: &mut wasmtime::Store<super::capabilities::HostState>,
                config: &str,
            ) -> wasmtime::Result<(Self::Bindings, Result<(), String>)> {
                let bindings = pre.instantiate_async(&mut *store).await?;
                let configured = bindings
                    .acmegate_plugin_plugin()
                    .call_configure(&mut *store, config)
                    .await?;
                Ok((bindings, configured))
            }
        }

        pub(crate) mod $module {
            wasmtime::component::bindgen!({
                path: "../plugin-sdk/wit",
                world: $world,
                imports: { default: async },
                exports: { default: async },
                with: {
                    "acmegate:plugin/types": super::capabilities::acmegate::plugin::types,
                    "acmegate:plugin/log": super::capabilities::acmegate::plugin::log,
                    "acmegate:plugin/clock": super::capabilities::acmegate::plugin::clock,
                    "acmegate:plugin/random": super::capabilities::acmegate::plugin::random,
                    "acmegate:plugin/state": super::capabilities::acmegate::plugin::state,
                    "acmegate:plugin/http": super::capabilities::acmegate::plugin::http,
                    "acmegate:plugin/dns": super::capabilities::acmegate::plugin::dns,
                    "acmegate:plugin/tls-probe": super::capabilities::acmegate::plugin::tls_probe,
                    "acmegate:plugin/zmq": super::capabilities::acmegate::plugin::zmq,
                    "acmegate:plugin/secrets": super::capabilities::acmegate::plugin::secrets,
                    "acmegate:plugin/files": super::capabilities::acmegate::plugin::files,
                    "acmegate:plugin/commands": super::capabilities::acmegate::plugin::commands,
                    "acmegate:plugin/smtp": super::capabilities::acmegate::plugin::smtp,
                },
            });
        }
    };
}

world!(
    /// The `challenge-validator` world.
    validator,
    "challenge-validator",
    ValidatorWorld,
    ChallengeValidator,
    ChallengeValidatorPre
);
world!(
    /// The `issuer-connector` world.
    issuer,
    "issuer-connector",
    IssuerWorld,
    IssuerConnector,
    IssuerConnectorPre
);
world!(
    /// The `notifier` world.
    notifier,
    "notifier",
    NotifierWorld,
    Notifier,
    NotifierPre
);
world!(
    /// The `target-deployer` world.
    deployer,
    "target-deployer",
    DeployerWorld,
    TargetDeployer,
    TargetDeployerPre
);

pub(crate) use capabilities::acmegate::plugin as wit;
