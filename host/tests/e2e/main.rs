//! End-to-end tests: the gateway on real sockets with a temporary data directory, driven by
//! real ACME clients (certbot, lego from Debian) and by acmegate's own client for the protocol
//! checks. One test binary, so that the gateway library is linked once.

mod acme_upstream;
mod admin_api;
mod ari;
mod bench;
mod certbot;
mod cli;
mod console;
mod crash;
mod deployers;
mod files_deployer;
mod issuance;
mod lego;
mod limits;
mod managed;
mod notifications;
mod plugin_issuer;
mod plugin_reload;
mod plugin_validators;
mod plugin_versions;
mod protocol;
mod relying_parties;
mod replicas;
mod retention;
mod support;
// The uPKI CA speaks ZeroMQ, which the gateway has only with its `zmq` feature.
#[cfg(feature = "zmq")]
mod upki;
#[cfg(feature = "zmq")]
mod upki_ca;
