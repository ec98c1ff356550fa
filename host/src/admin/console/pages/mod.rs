//! One file per console section; each reads through [`super::View`] and renders with
//! [`super::html`].

pub mod audit;
pub mod certificates;
pub mod overview;
pub mod plugins;

use std::collections::BTreeMap;

/// A query map from pairs, for the API calls pages make.
fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `2026-12-06T02:15:53Z` as `2026-12-06 02:15` (UTC): what a person scans in a table.
fn when(value: &serde_json::Value) -> String {
    match value.as_str() {
        Some(t) if t.len() >= 16 => super::html::esc(&format!("{} {}", &t[..10], &t[11..16])),
        _ => super::html::text(value),
    }
}
