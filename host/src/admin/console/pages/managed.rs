//! Managed certificates: a listing paged on the server with state, next renewal, last serial
//! and deployment (`GET /api/v1/managed`), and renew now, pause and resume
//! (`POST /api/v1/managed/{name}/renew|pause|resume`).

use serde_json::Value;

use super::super::html::{self, segment, text};
use super::super::{see_other, View, PREFIX};
use super::{badge, done_notice, items, joined, link, may_act, when, Listing};
use crate::admin::ApiError;
use crate::reply::Reply;

/// What each action asks of the API, and its notice once done.
const ACTIONS: [(&str, &str); 3] = [
    (
        "renew",
        "Renewal started: a new key and certificate follow within seconds, then its deployment.",
    ),
    (
        "pause",
        "Paused: neither renewed nor deployed until resumed.",
    ),
    (
        "resume",
        "Resumed: renewed at once if it fell due meanwhile.",
    ),
];

pub async fn list(view: &View<'_>) -> Result<Reply, ApiError> {
    let listing = Listing::new(&view.query, "/managed", &[]);
    let answer = view.get("/api/v1/managed", listing.api_query()).await?;
    let admin = may_act(view, "renewing, pausing and resuming");
    let rows: Vec<Vec<String>> = items(&answer)
        .map(|m| {
            let state = m["state"].as_str().unwrap_or("unknown");
            let mut row = vec![
                format!("<strong>{}</strong>", text(&m["name"])),
                joined(&m["names"], "–"),
                badge(state),
                when(&m["next_renewal_at"]),
                link("certificates", &m["certificate_serial"]),
                deployment(m),
                text(&m["failures"]),
                text(&m["last_error"]),
            ];
            if admin.is_ok() {
                row.push(actions(view, m, state));
            }
            row
        })
        .collect();
    let mut headers = vec![
        "Name",
        "Names",
        "State",
        "Next renewal (UTC)",
        "Last serial",
        "Last deployment",
        "Failures",
        "Last error",
    ];
    if admin.is_ok() {
        headers.push("Actions");
    }
    let mut main = done_notice(view, &ACTIONS);
    if let Err(why) = admin {
        main.push_str(&why);
    }
    main.push_str(&html::table(
        &listing.caption(&answer, "managed certificate(s)"),
        &headers,
        &rows,
    ));
    main.push_str(&listing.pager(&answer, ("← Previous", "Next →")));
    Ok(view.page("Managed certificates", "managed", &main))
}

/// The outcome of the last deployment: deployed (to how many targets) or failed.
fn deployment(m: &Value) -> String {
    let last = &m["last_deployment"];
    if last.is_null() {
        return "–".into();
    }
    let targets = last["targets"].as_array().map_or(0, Vec::len);
    let word = if last["deployed"] == true {
        "deployed"
    } else {
        "failed"
    };
    format!("{} to {targets} target(s)", badge(word))
}

/// Renew now always; pause or resume by the state.
fn actions(view: &View<'_>, m: &Value, state: &str) -> String {
    let name = m["name"].as_str().unwrap_or_default();
    let form = |verb: &str, label: &str| {
        html::row_action_form(
            &format!("{PREFIX}/managed/{}/{verb}", segment(name)),
            &view.form_token,
            label,
            &format!("managed certificate {name}"),
            false,
        )
    };
    let switch = if state == "paused" {
        form("resume", "Resume")
    } else {
        form("pause", "Pause")
    };
    format!("{}{switch}", form("renew", "Renew now"))
}

/// The action forms' target: the API's renew, pause or resume of `name`, then back to the
/// list. `verb` is one of [`ACTIONS`] (the router passes nothing else).
pub async fn act(view: &View<'_>, name: &str, verb: &str) -> Result<Reply, ApiError> {
    view.post(
        &format!("/api/v1/managed/{name}/{verb}"),
        serde_json::json!({}),
    )
    .await?;
    Ok(see_other(format!("{PREFIX}/managed?done={verb}")))
}

/// Whether `verb` is an action of this page.
pub fn is_action(verb: &str) -> bool {
    ACTIONS.iter().any(|(v, _)| *v == verb)
}
