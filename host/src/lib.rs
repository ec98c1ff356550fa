//! acmegate: an ACME (RFC 8555) gateway in front of an internal PKI.
//!
//! Layout, in layers (docs/design.md draws them):
//! - front ends: [`wfe`] (ACME over HTTP: routes, JWS and nonce checks through [`jws`] and
//!   [`nonce`], ACME objects out) and [`admin`] (the mTLS admin API); both answer with [`reply`];
//! - the [`authority`]: what the gateway decides (orders, validation, finalize, revocation, EAB
//!   policy, profiles) and the background work that follows (issuance, deployment, notices,
//!   expiry, the CRL), against one shared [`authority::Gateway`] and its [`Clock`](clock::Clock);
//! - the parts it drives: [`acme`] (the protocol without I/O), [`ca`] (the built-in CA),
//!   [`va`] (challenge validation), [`plugins`] (the WebAssembly runtime), [`store`]
//!   (persistence), with [`config`], [`clock`], [`ids`], [`metrics`] beside them;
//! - [`server`] wires them into the binary; [`bench`] and [`client`] drive a whole server.
//!
//! `layering.rs` (a test) fails when a module below the front ends imports one of them or an
//! import cycle spans two top-level modules.

pub mod acme;
pub mod admin;
pub mod authority;
pub mod bench;
pub mod body;
pub mod ca;
pub mod client;
pub mod clock;
pub mod config;
pub mod hex;
mod idle;
pub mod ids;
pub mod instance;
pub mod jws;
pub mod metrics;
pub mod nonce;
pub mod plugin_bench;
pub mod plugins;
pub mod reply;
pub mod server;
pub mod store;
pub mod va;
pub mod wfe;

#[cfg(test)]
mod layering;
