//! Plugins: status, counters and last error (`GET /api/v1/plugins`), and reload of one or all
//! (`POST /api/v1/plugins/{name}/reload`, `POST /api/v1/plugins/reload`).

use super::super::html::{self, segment, text};
use super::super::{see_other, View, PREFIX};
use super::when;
use crate::admin::{ApiError, Role};
use crate::reply::Reply;

pub async fn show(view: &View<'_>) -> Result<Reply, ApiError> {
    let answer = view.get("/api/v1/plugins", Default::default()).await?;
    let admin = view.caller.role == Role::Admin;
    let reload_button = |action: &str, label: &str| {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"{action}\">{}<button type=\"submit\">{label}</button></form>",
            html::token_field(&view.form_token)
        )
    };
    let rows: Vec<Vec<String>> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default();
            let mut row = vec![
                text(&p["name"]),
                text(&p["kind"]),
                format!("{} {}", text(&p["plugin_name"]), text(&p["version"])),
                super::overview::health(p),
                text(&p["generation"]),
                when(&p["loaded_at"]),
                text(&p["calls"]),
                text(&p["faults"]),
                text(&p["last_error"]),
            ];
            if admin {
                row.push(reload_button(
                    &format!("{PREFIX}/plugins/{}/reload", segment(name)),
                    "Reload",
                ));
            }
            row
        })
        .collect();
    let mut headers = vec![
        "Name",
        "Kind",
        "Plugin",
        "Health",
        "Generation",
        "Loaded (UTC)",
        "Calls",
        "Faults",
        "Last error",
    ];
    if admin {
        headers.push("Action");
    }
    let mut main = String::new();
    if view.query.get("done").map(String::as_str) == Some("reloaded") {
        main.push_str(&html::notice("ok", "Reloaded."));
    }
    main.push_str(&html::notice(
        "info",
        &format!(
            "Hot reloads since start: {}, failed: {}.",
            answer["reloads"], answer["reload_failures"]
        ),
    ));
    main.push_str(&html::table("Configured plugins", &headers, &rows));
    if admin && !rows.is_empty() {
        main.push_str(&reload_button(
            &format!("{PREFIX}/plugins/reload"),
            "Reload every plugin",
        ));
    }
    Ok(view.page("Plugins", "plugins", &main))
}

/// The reload forms' action: the API's reload of one plugin or of all, then back to the list.
pub async fn reload(view: &View<'_>, name: Option<&str>) -> Result<Reply, ApiError> {
    let path = match name {
        Some(name) => format!("/api/v1/plugins/{name}/reload"),
        None => "/api/v1/plugins/reload".to_owned(),
    };
    view.post(&path, serde_json::json!({})).await?;
    Ok(see_other(format!("{PREFIX}/plugins?done=reloaded")))
}
