//! Host-side bindings generated from the WIT packages: the current contract in
//! `plugin-sdk/wit/` (`acmegate:plugin@0.2.0`) and the 0.1.0 one kept in
//! `plugin-sdk/wit-0.1.0/`, so that components built against either load.
//!
//! The capability interfaces are generated once, from the current `host-capabilities` world,
//! and every extension-point world of both versions reuses them through `with`, so one set of
//! host traits serves all plugin kinds and versions. That works for 0.1.0 because its
//! capability interfaces and shared `types` have the same shape as the current ones, and the
//! component model checks types by structure, not by name. The exported interfaces changed
//! (typed errors), so each version has its own export bindings; `compat` converts between
//! them.

use wasmtime::component::Linker;

use super::capabilities::HostState;
pub(crate) use super::version::Contract;

/// The imports a plugin may use (`log`, `clock`, ...) and the shared `types`.
pub(crate) mod capabilities {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "host-capabilities",
        imports: { default: async },
    });
}

/// A value of the current contract or of 0.1.0: a pre-instance or an instance's exports.
pub(crate) enum Versioned<C, O> {
    Current(C),
    V0_1(O),
}

/// What loading needs of an extension-point world: its name, its linked pre-instance, and the
/// describe + configure canary every world exports the same way.
pub(crate) trait World {
    /// The WIT world name (`challenge-validator`, ...), which `describe` must echo.
    const NAME: &'static str;
    type Pre: Send + Sync + 'static;
    /// The exports of one instance.
    type Bindings: Send + Sync;

    /// The pre-instance of a component that speaks `contract`.
    fn pre(
        instance: wasmtime::component::InstancePre<HostState>,
        contract: Contract,
    ) -> wasmtime::Result<Self::Pre>;

    /// Instantiates in `store` and calls `describe`, then `configure(config)`.
    fn describe_and_configure(
        pre: &Self::Pre,
        store: &mut wasmtime::Store<HostState>,
        config: &str,
    ) -> impl std::future::Future<
        Output = wasmtime::Result<(wit::types::PluginInfo, Result<(), String>)>,
    > + Send;

    /// Instantiates in `store` and calls `configure(config)`, as every call's fresh instance
    /// starts. The inner `Err` is the plugin refusing its configuration.
    fn instantiate_configured(
        pre: &Self::Pre,
        store: &mut wasmtime::Store<HostState>,
        config: &str,
    ) -> impl std::future::Future<Output = wasmtime::Result<(Self::Bindings, Result<(), String>)>> + Send;
}

/// Bindings for one extension-point world in both versions, the current one reusing the
/// capability interfaces it imports (`$wit => $rust`), and its [`World`] marker type.
macro_rules! world {
    ($(#[$doc:meta])* $module:ident, $world:tt, $marker:ident, $bindings:ident, $pre:ident,
     { $($wit:tt => $rust:ident),* $(,)? }) => {
        $(#[$doc])*
        pub(crate) struct $marker;

        impl World for $marker {
            const NAME: &'static str = $world;
            type Pre = Versioned<$module::$pre<HostState>, v0_1::$module::$pre<HostState>>;
            type Bindings = Versioned<$module::$bindings, v0_1::$module::$bindings>;

            fn pre(
                instance: wasmtime::component::InstancePre<HostState>,
                contract: Contract,
            ) -> wasmtime::Result<Self::Pre> {
                Ok(match contract {
                    Contract::V0_1 => Versioned::V0_1(v0_1::$module::$pre::new(instance)?),
                    Contract::V0_2 => Versioned::Current($module::$pre::new(instance)?),
                })
            }

            async fn describe_and_configure(
                pre: &Self::Pre,
                store: &mut wasmtime::Store<HostState>,
                config: &str,
            ) -> wasmtime::Result<(wit::types::PluginInfo, Result<(), String>)> {
                // `plugin` is the same in both versions and `types` shared: only the bindings
                // differ.
                match pre {
                    Versioned::Current(pre) => {
                        let bindings = pre.instantiate_async(&mut *store).await?;
                        let plugin = bindings.acmegate_plugin_plugin();
                        let info = plugin.call_describe(&mut *store).await?;
                        let configured = plugin.call_configure(&mut *store, config).await?;
                        Ok((info, configured))
                    }
                    Versioned::V0_1(pre) => {
                        let bindings = pre.instantiate_async(&mut *store).await?;
                        let plugin = bindings.acmegate_plugin_plugin();
                        let info = plugin.call_describe(&mut *store).await?;
                        let configured = plugin.call_configure(&mut *store, config).await?;
                        Ok((info, configured))
                    }
                }
            }

            async fn instantiate_configured(
                pre: &Self::Pre,
                store: &mut wasmtime::Store<HostState>,
                config: &str,
            ) -> wasmtime::Result<(Self::Bindings, Result<(), String>)> {
                match pre {
                    Versioned::Current(pre) => {
                        let bindings = pre.instantiate_async(&mut *store).await?;
                        let configured = bindings
                            .acmegate_plugin_plugin()
                            .call_configure(&mut *store, config)
                            .await?;
                        Ok((Versioned::Current(bindings), configured))
                    }
                    Versioned::V0_1(pre) => {
                        let bindings = pre.instantiate_async(&mut *store).await?;
                        let configured = bindings
                            .acmegate_plugin_plugin()
                            .call_configure(&mut *store, config)
                            .await?;
                        Ok((Versioned::V0_1(bindings), configured))
                    }
                }
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
                    $($wit: super::capabilities::acmegate::plugin::$rust,)*
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
    ChallengeValidatorPre,
    {
        "acmegate:plugin/log" => log,
        "acmegate:plugin/clock" => clock,
        "acmegate:plugin/random" => random,
        "acmegate:plugin/state" => state,
        "acmegate:plugin/secrets" => secrets,
        "acmegate:plugin/http" => http,
        "acmegate:plugin/dns" => dns,
        "acmegate:plugin/tls-probe" => tls_probe,
    }
);
world!(
    /// The `issuer-connector` world.
    issuer,
    "issuer-connector",
    IssuerWorld,
    IssuerConnector,
    IssuerConnectorPre,
    {
        "acmegate:plugin/log" => log,
        "acmegate:plugin/clock" => clock,
        "acmegate:plugin/random" => random,
        "acmegate:plugin/state" => state,
        "acmegate:plugin/secrets" => secrets,
        "acmegate:plugin/http" => http,
        "acmegate:plugin/zmq" => zmq,
    }
);
world!(
    /// The `notifier` world.
    notifier,
    "notifier",
    NotifierWorld,
    Notifier,
    NotifierPre,
    {
        "acmegate:plugin/log" => log,
        "acmegate:plugin/clock" => clock,
        "acmegate:plugin/random" => random,
        "acmegate:plugin/state" => state,
        "acmegate:plugin/secrets" => secrets,
        "acmegate:plugin/http" => http,
        "acmegate:plugin/smtp" => smtp,
    }
);
world!(
    /// The `target-deployer` world.
    deployer,
    "target-deployer",
    DeployerWorld,
    TargetDeployer,
    TargetDeployerPre,
    {
        "acmegate:plugin/log" => log,
        "acmegate:plugin/clock" => clock,
        "acmegate:plugin/random" => random,
        "acmegate:plugin/state" => state,
        "acmegate:plugin/secrets" => secrets,
        "acmegate:plugin/http" => http,
        "acmegate:plugin/files" => files,
        "acmegate:plugin/commands" => commands,
        "acmegate:plugin/tls-probe" => tls_probe,
    }
);

/// The worlds of `acmegate:plugin@0.1.0`, whose every world imports every capability. Their
/// shared `types` and capability interfaces are the current ones (same shape); their exports
/// are their own.
pub(crate) mod v0_1 {
    macro_rules! world_v0_1 {
        ($module:ident, $world:literal) => {
            pub(crate) mod $module {
                wasmtime::component::bindgen!({
                    path: "../plugin-sdk/wit-0.1.0",
                    world: $world,
                    imports: { default: async },
                    exports: { default: async },
                    with: {
                        "acmegate:plugin/types": crate::plugins::bindings::capabilities::acmegate::plugin::types,
                        "acmegate:plugin/log": crate::plugins::bindings::capabilities::acmegate::plugin::log,
                        "acmegate:plugin/clock": crate::plugins::bindings::capabilities::acmegate::plugin::clock,
                        "acmegate:plugin/random": crate::plugins::bindings::capabilities::acmegate::plugin::random,
                        "acmegate:plugin/state": crate::plugins::bindings::capabilities::acmegate::plugin::state,
                        "acmegate:plugin/http": crate::plugins::bindings::capabilities::acmegate::plugin::http,
                        "acmegate:plugin/dns": crate::plugins::bindings::capabilities::acmegate::plugin::dns,
                        "acmegate:plugin/tls-probe": crate::plugins::bindings::capabilities::acmegate::plugin::tls_probe,
                        "acmegate:plugin/zmq": crate::plugins::bindings::capabilities::acmegate::plugin::zmq,
                        "acmegate:plugin/secrets": crate::plugins::bindings::capabilities::acmegate::plugin::secrets,
                        "acmegate:plugin/files": crate::plugins::bindings::capabilities::acmegate::plugin::files,
                        "acmegate:plugin/commands": crate::plugins::bindings::capabilities::acmegate::plugin::commands,
                        "acmegate:plugin/smtp": crate::plugins::bindings::capabilities::acmegate::plugin::smtp,
                    },
                });
            }
        };
    }

    world_v0_1!(validator, "challenge-validator");
    world_v0_1!(issuer, "issuer-connector");
    world_v0_1!(notifier, "notifier");
    world_v0_1!(deployer, "target-deployer");
}

/// Links the 0.1.0 capability interfaces (`acmegate:plugin/log@0.1.0`, ...) to the host's
/// implementations of the current ones, which have the same shape (see the module docs):
/// one line per function.
pub(crate) fn add_v0_1_capabilities_to_linker(
    linker: &mut Linker<HostState>,
) -> wasmtime::Result<()> {
    use capabilities::acmegate::plugin::{
        clock, commands, dns, files, http, log, random, secrets, smtp, state, tls_probe, zmq,
    };
    use wasmtime::StoreContextMut;

    // `$interface::$method` of the current host traits as the function `$name` of the
    // linker instance `$instance`; `-> ()` for a function without results.
    macro_rules! forward {
        ($instance:ident, $name:literal, $interface:ident::$method:ident($($arg:ident: $ty:ty),*) -> ()) => {
            $instance.func_wrap_async(
                $name,
                |mut store: StoreContextMut<'_, HostState>, ($($arg,)*): ($($ty,)*)| {
                    Box::new(async move {
                        $interface::Host::$method(store.data_mut(), $($arg),*).await;
                        Ok(())
                    })
                },
            )?;
        };
        ($instance:ident, $name:literal, $interface:ident::$method:ident($($arg:ident: $ty:ty),*)) => {
            $instance.func_wrap_async(
                $name,
                |mut store: StoreContextMut<'_, HostState>, ($($arg,)*): ($($ty,)*)| {
                    Box::new(async move {
                        Ok(($interface::Host::$method(store.data_mut(), $($arg),*).await,))
                    })
                },
            )?;
        };
    }

    let mut i = linker.instance("acmegate:plugin/log@0.1.0")?;
    forward!(i, "log", log::log(level: log::Level, message: String) -> ());
    let mut i = linker.instance("acmegate:plugin/clock@0.1.0")?;
    forward!(i, "now", clock::now());
    forward!(i, "monotonic-nanos", clock::monotonic_nanos());
    let mut i = linker.instance("acmegate:plugin/random@0.1.0")?;
    forward!(i, "bytes", random::bytes(len: u32));
    let mut i = linker.instance("acmegate:plugin/state@0.1.0")?;
    forward!(i, "get", state::get(key: String));
    forward!(i, "set", state::set(key: String, value: Vec<u8>));
    forward!(i, "delete", state::delete(key: String));
    forward!(i, "keys", state::keys(prefix: String));
    let mut i = linker.instance("acmegate:plugin/http@0.1.0")?;
    forward!(i, "send", http::send(request: http::Request));
    let mut i = linker.instance("acmegate:plugin/dns@0.1.0")?;
    forward!(i, "lookup", dns::lookup(name: String, record_type: dns::RecordType));
    let mut i = linker.instance("acmegate:plugin/tls-probe@0.1.0")?;
    forward!(i, "probe", tls_probe::probe(request: tls_probe::ProbeRequest));
    let mut i = linker.instance("acmegate:plugin/zmq@0.1.0")?;
    forward!(i, "request", zmq::request(endpoint: String, parts: Vec<Vec<u8>>, timeout_ms: u32));
    let mut i = linker.instance("acmegate:plugin/secrets@0.1.0")?;
    forward!(i, "get", secrets::get(name: String));
    let mut i = linker.instance("acmegate:plugin/files@0.1.0")?;
    forward!(i, "write", files::write(path: String, contents: Vec<u8>, mode: u32));
    forward!(i, "read", files::read(path: String));
    let mut i = linker.instance("acmegate:plugin/commands@0.1.0")?;
    forward!(i, "run", commands::run(name: String, timeout_ms: u32));
    let mut i = linker.instance("acmegate:plugin/smtp@0.1.0")?;
    forward!(i, "send", smtp::send(message: smtp::Message));
    Ok(())
}

pub(crate) use capabilities::acmegate::plugin as wit;
