//! The overview: certificates by state, the expiry timeline, recent activity and plugin health,
//! from `GET /api/v1/summary` and `GET /api/v1/plugins`.

use serde_json::Value;

use super::super::html::{self, esc, text};
use super::super::{chart, View, PREFIX};
use crate::admin::ApiError;
use crate::reply::Reply;

pub async fn show(view: &View<'_>) -> Result<Reply, ApiError> {
    let summary = view.get("/api/v1/summary", Default::default()).await?;
    let plugins = view.get("/api/v1/plugins", Default::default()).await?;
    let profiles = view.get("/api/v1/profiles", Default::default()).await?;
    let certs = &summary["certificates"];
    let card = |label: &str, value: &Value, link: &str, class: &str| {
        format!(
            "<li class=\"card {class}\"><a href=\"{PREFIX}/certificates{link}\">\
             <span class=\"count\">{}</span> <span class=\"label\">{label}</span></a></li>",
            text(value)
        )
    };
    let states = format!(
        "<section aria-labelledby=\"states\"><h2 id=\"states\">Certificates by state</h2><ul class=\"cards\">{}{}{}</ul></section>",
        card("valid", &certs["valid"], "?status=valid", "ok"),
        card("expired", &certs["expired"], "?status=valid&amp;expiring_before=0d", "warn"),
        card("revoked", &certs["revoked"], "?status=revoked", "bad"),
    );
    let per_day: Vec<u64> = summary["expiring_per_day"]
        .as_array()
        .map(|days| days.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let timeline = format!(
        "<section aria-labelledby=\"timeline\"><h2 id=\"timeline\">Expiring in the next {} days</h2>{}\
         <p><a href=\"{PREFIX}/certificates?status=valid&amp;expiring_before=30d\">Valid certificates expiring within 30 days</a></p></section>",
        per_day.len(),
        chart::expiry_timeline(&per_day)
    );
    let activity = html::table(
        "Issuances and failed orders",
        &["", "Last 24 hours", "Last 7 days"],
        &[
            vec![
                "Certificates issued".into(),
                text(&summary["issued"]["24h"]),
                text(&summary["issued"]["7d"]),
            ],
            vec![
                "Orders failed".into(),
                text(&summary["failed_orders"]["24h"]),
                text(&summary["failed_orders"]["7d"]),
            ],
        ],
    );
    let rows: Vec<Vec<String>> = plugins["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                format!("<a href=\"{PREFIX}/plugins\">{}</a>", text(&p["name"])),
                text(&p["kind"]),
                health(p),
                text(&p["faults"]),
                text(&p["last_error"]),
            ]
        })
        .collect();
    let health_table = html::table(
        "Plugin health",
        &["Plugin", "Kind", "Health", "Faults", "Last error"],
        &rows,
    );
    let main = format!(
        "{states}{timeline}<section aria-labelledby=\"activity\"><h2 id=\"activity\">Activity</h2>{activity}</section>\
         <section aria-labelledby=\"health\"><h2 id=\"health\">Issuers and plugins</h2>\
         <p>Issuers by profile: {}.</p>{health_table}</section>",
        issuers(&profiles)
    );
    Ok(view.page("Overview", "overview", &main))
}

/// `builtin (default, short)`, one issuer after the other, from the profile listing.
fn issuers(profiles: &Value) -> String {
    let mut by_issuer: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for p in profiles["items"].as_array().into_iter().flatten() {
        by_issuer
            .entry(p["issuer"].as_str().unwrap_or("builtin"))
            .or_default()
            .push(p["name"].as_str().unwrap_or_default());
    }
    let parts: Vec<String> = by_issuer
        .iter()
        .map(|(issuer, names)| {
            format!(
                "<a href=\"{PREFIX}/certificates{}\"><strong>{}</strong></a> ({})",
                esc(&html::query(&[("issuer", issuer)])),
                esc(issuer),
                esc(&names.join(", "))
            )
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join("; ")
    }
}

/// A plugin's health in one word, with its class: off, failing (its last load or call left an
/// error) or ok.
pub fn health(plugin: &Value) -> String {
    let (class, word) = if plugin["enabled"] == Value::Bool(false) {
        ("warn", "disabled")
    } else if !plugin["last_error"].is_null() {
        ("bad", "failing")
    } else {
        ("ok", "ok")
    };
    format!("<span class=\"badge badge-{class}\">{word}</span>")
}
