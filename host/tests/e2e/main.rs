//! End-to-end tests: the gateway on real sockets with a temporary data directory, driven by
//! real ACME clients (certbot, lego from Debian) and by acmegate's own client for the protocol
//! checks. One test binary, so that the gateway library is linked once.

mod certbot;
mod cli;
mod lego;
mod protocol;
mod support;
