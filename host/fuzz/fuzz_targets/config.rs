//! The configuration file (`Config::parse`, what `Config::load` does with the file's text):
//! TOML syntax, the keys and their types, relative paths anchored at the file's directory, and
//! the whole configuration's validation (profiles, issuers, plugins, targets, addresses).
#![no_main]

use std::path::Path;

use acmegate::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(Path::new("/etc/acmegate/acmegate.toml"), text, []);
    }
});
