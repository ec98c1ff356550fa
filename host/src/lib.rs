//! acmegate: an ACME (RFC 8555) gateway in front of an internal PKI.
//!
//! Layout, by role: [`acme`] holds the protocol without I/O; [`jws`] and [`nonce`] the request
//! checks of RFC 8555 §6; [`wfe`] the HTTP front end; [`va`] validation; [`ca`] the built-in
//! CA; [`issuance`] turns finalized orders into certificates; [`admin`] is the mTLS admin API; [`plugins`] the WebAssembly plugin runtime; [`store`] persistence; [`config`] and
//! [`server`] wire them into the binary.

pub mod acme;
pub mod admin;
pub mod bench;
pub mod body;
pub mod ca;
pub mod client;
pub mod config;
pub mod deploy;
pub mod expiry;
mod idle;
pub mod instance;
pub mod issuance;
pub mod jws;
pub mod metrics;
pub mod nonce;
pub mod notify;
pub mod plugin_bench;
pub mod plugins;
pub mod server;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod va;
pub mod validation;
pub mod wfe;
