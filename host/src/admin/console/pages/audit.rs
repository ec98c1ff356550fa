//! The audit log: filtered and paged (`GET /api/v1/audit`), with the chain's verification
//! (`GET /api/v1/audit/verify`) stated plainly at the top.

use super::super::html::{self, text};
use super::super::View;
use super::{when, Listing};
use crate::admin::ApiError;
use crate::reply::Reply;

const FILTERS: [(&str, &str, &str); 5] = [
    ("actor", "Actor", "admin:alice"),
    ("action", "Action", "certificate.revoke"),
    ("resource", "Resource prefix", "certificate/"),
    ("since", "Since", "-7d"),
    ("until", "Until", "RFC 3339"),
];

pub async fn show(view: &View<'_>) -> Result<Reply, ApiError> {
    let verdict = view.get("/api/v1/audit/verify", Default::default()).await?;
    let mut main = if verdict["intact"] == true {
        html::notice(
            "ok",
            &format!(
                "The audit chain is intact: {} entries verified link by link ({} archived).",
                verdict["entries"], verdict["archived"]
            ),
        )
    } else {
        html::notice(
            "bad",
            &format!(
                "The audit chain is BROKEN at entry {}: {}",
                verdict["broken_at"],
                verdict["reason"].as_str().unwrap_or("unknown reason")
            ),
        )
    };
    let keys: Vec<&str> = FILTERS.iter().map(|(k, _, _)| *k).collect();
    let listing = Listing::new(&view.query, "/audit", &keys);
    let fields: String = FILTERS
        .iter()
        .map(|(key, label, hint)| listing.input(key, label, hint))
        .collect();
    main.push_str(&listing.search_form(&fields, "Filter"));
    let answer = match view.get("/api/v1/audit", listing.api_query()).await {
        Ok(answer) => answer,
        Err(e) if e.status == http::StatusCode::BAD_REQUEST => {
            main.push_str(&html::notice("bad", &e.detail));
            return Ok(view.page("Audit log", "audit", &main));
        }
        Err(e) => return Err(e),
    };
    main.push_str(&html::table(
        &format!("{}, newest first", listing.caption(&answer, "entries")),
        &["#", "At (UTC)", "Actor", "Action", "Resource", "Details"],
        &rows(&answer, true),
    ));
    main.push_str(&listing.pager(&answer, ("← Newer", "Older →")));
    Ok(view.page("Audit log", "audit", &main))
}

/// The table rows of an audit API answer's `items`: sequence, time, actor, action, the
/// resource when `with_resource` (a certificate's own trail leaves it out), and the details.
pub(super) fn rows(answer: &serde_json::Value, with_resource: bool) -> Vec<Vec<String>> {
    super::items(answer)
        .map(|e| {
            let mut row = vec![
                text(&e["seq"]),
                when(&e["at"]),
                text(&e["actor"]),
                text(&e["action"]),
            ];
            if with_resource {
                row.push(text(&e["resource"]));
            }
            row.push(format!(
                "<code class=\"wrap\">{}</code>",
                text(&e["details"])
            ));
            row
        })
        .collect()
}
