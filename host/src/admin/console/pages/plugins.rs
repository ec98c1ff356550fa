//! Plugins: status, counters and last error (`GET /api/v1/plugins`), reload of one or all
//! (`POST /api/v1/plugins/{name}/reload`, `POST /api/v1/plugins/reload`), and switching one
//! off and on (`POST /api/v1/plugins/{name}/disable|enable`).

use super::super::html::{self, segment, text};
use super::super::{see_other, View, PREFIX};
use super::{done_notice, items, may_act, when};
use crate::admin::ApiError;
use crate::reply::Reply;

/// The one-plugin actions: the API verb, the `done` its redirect carries, and its notice.
const ACTIONS: [(&str, &str, &str); 3] = [
    ("reload", "reloaded", "Reloaded."),
    (
        "disable",
        "disabled",
        "Disabled: its calls fail at once without running it, on every replica.",
    ),
    ("enable", "enabled", "Enabled: its calls run it again."),
];

pub async fn show(view: &View<'_>) -> Result<Reply, ApiError> {
    let answer = view.get("/api/v1/plugins", Default::default()).await?;
    let admin = may_act(view, "reloading and switching plugins");
    let button = |action: String, label: &str, name: &str, danger: bool| {
        html::row_action_form(
            &action,
            &view.form_token,
            label,
            &format!("plugin {name}"),
            danger,
        )
    };
    let rows: Vec<Vec<String>> = items(&answer)
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
            if admin.is_ok() {
                let action = |verb: &str| format!("{PREFIX}/plugins/{}/{verb}", segment(name));
                let switch = if p["enabled"] == false {
                    button(action("enable"), "Enable", name, false)
                } else {
                    button(action("disable"), "Disable", name, true)
                };
                row.push(format!(
                    "{}{switch}",
                    button(action("reload"), "Reload", name, false)
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
    if admin.is_ok() {
        headers.push("Actions");
    }
    let notices: Vec<(&str, &str)> = ACTIONS.iter().map(|(_, done, msg)| (*done, *msg)).collect();
    let mut main = done_notice(view, &notices);
    main.push_str(&html::notice(
        "info",
        &format!(
            "Hot reloads since start: {}, failed: {}.",
            answer["reloads"], answer["reload_failures"]
        ),
    ));
    if let Err(why) = &admin {
        main.push_str(why);
    }
    main.push_str(&html::table("Configured plugins", &headers, &rows));
    if admin.is_ok() && !rows.is_empty() {
        main.push_str(&html::action_form(
            &format!("{PREFIX}/plugins/reload"),
            &view.form_token,
            "",
            "Reload every plugin",
            false,
        ));
    }
    Ok(view.page("Plugins", "plugins", &main))
}

/// The one-plugin forms' target: the API's reload, disable or enable of `name` (every plugin
/// for a reload without one), then back to the list with the action's notice.
pub async fn act(view: &View<'_>, name: Option<&str>, verb: &str) -> Result<Reply, ApiError> {
    let path = match name {
        Some(name) => format!("/api/v1/plugins/{name}/{verb}"),
        None => format!("/api/v1/plugins/{verb}"),
    };
    view.post(&path, serde_json::json!({})).await?;
    let done = ACTIONS
        .iter()
        .find(|(v, _, _)| *v == verb)
        .map_or("", |(_, done, _)| *done);
    Ok(see_other(format!("{PREFIX}/plugins?done={done}")))
}

/// Whether `verb` is a one-plugin action of this page.
pub fn is_action(verb: &str) -> bool {
    ACTIONS.iter().any(|(v, _, _)| *v == verb)
}
