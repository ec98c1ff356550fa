//! The configuration file (`Config::parse`, what `Config::load` does with the file's text) and
//! the environment overlay beside it: TOML syntax, the keys and their types, relative paths
//! anchored at the file's directory, `ACMEGATE_<SECTION>_<KEY>` variables (their names and
//! values), and the whole configuration's validation (profiles, issuers, plugins, targets,
//! addresses). The input is the file's text, then optionally a NUL and one `SECTION_KEY=value`
//! variable per line (the `ACMEGATE_` prefix is added).
#![no_main]

use std::path::Path;

use acmegate::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, env) = text.split_once('\0').unwrap_or((text, ""));
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (format!("ACMEGATE_{key}"), value.to_string()))
        .collect();
    let _ = Config::parse(Path::new("/etc/acmegate/acmegate.toml"), file, vars);
});
