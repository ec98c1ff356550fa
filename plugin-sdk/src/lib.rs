//! The acmegate plugin SDK: the WIT contract and Rust helpers for plugin authors.
//!
//! The contract and bindings arrive with the plugin platform; this crate reserves the place.
