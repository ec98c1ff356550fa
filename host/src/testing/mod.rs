//! Test support shared by unit tests and the end-to-end tests in `host/tests`: real servers on
//! 127.0.0.1 that stand in for the outside world. Not part of the gateway's API.

pub mod dns;
pub mod pebble;
