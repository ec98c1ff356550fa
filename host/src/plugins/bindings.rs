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

/// Bindings for one extension-point world, reusing the capability interfaces above.
macro_rules! world {
    ($(#[$doc:meta])* $module:ident, $world:tt) => {
        $(#[$doc])*
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
                },
            });
        }
    };
}

world!(
    /// The `challenge-validator` world.
    validator,
    "challenge-validator"
);
world!(
    /// The `issuer-connector` world.
    issuer,
    "issuer-connector"
);
world!(
    /// The `notifier` world.
    notifier,
    "notifier"
);

pub(crate) use capabilities::acmegate::plugin as wit;
