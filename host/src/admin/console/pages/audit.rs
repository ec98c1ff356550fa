//! The audit log: filtered and paged (`GET /api/v1/audit`), with the chain's verification
//! (`GET /api/v1/audit/verify`) stated plainly at the top.

use super::super::html::{self, esc, text};
use super::super::{View, PREFIX};
use super::{query, when};
use crate::admin::ApiError;
use crate::reply::Reply;

const FILTERS: [(&str, &str, &str); 5] = [
    ("actor", "Actor", "admin:alice"),
    ("action", "Action", "certificate.revoke"),
    ("resource", "Resource prefix", "certificate/"),
    ("since", "Since", "-7d"),
    ("until", "Until", "RFC 3339"),
];

const PER_PAGE: u32 = 50;

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
    let page: u32 = view
        .query
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let chosen: Vec<(&str, &str)> = FILTERS
        .iter()
        .map(|(k, _, _)| {
            (
                *k,
                view.query.get(*k).map(String::as_str).unwrap_or_default(),
            )
        })
        .collect();
    main.push_str(&format!(
        "<form class=\"search\" method=\"get\" action=\"{PREFIX}/audit\" role=\"search\">"
    ));
    for ((key, label, hint), (_, value)) in FILTERS.iter().zip(&chosen) {
        main.push_str(&format!(
            "<label>{label} <input name=\"{key}\" value=\"{}\" placeholder=\"{hint}\"></label>",
            esc(value)
        ));
    }
    main.push_str("<button type=\"submit\">Filter</button></form>");
    let mut api_query = query(&[
        ("per_page", &PER_PAGE.to_string()),
        ("page", &page.to_string()),
    ]);
    for (k, v) in chosen.iter().filter(|(_, v)| !v.is_empty()) {
        api_query.insert(k.to_string(), v.to_string());
    }
    let answer = match view.get("/api/v1/audit", api_query).await {
        Ok(answer) => answer,
        Err(e) if e.status == http::StatusCode::BAD_REQUEST => {
            main.push_str(&html::notice("bad", &e.detail));
            return Ok(view.page("Audit log", "audit", &main));
        }
        Err(e) => return Err(e),
    };
    let rows = rows(&answer, true);
    let total = answer["total"].as_u64().unwrap_or(0);
    let pages = total.div_ceil(u64::from(PER_PAGE)).max(1);
    main.push_str(&html::table(
        &format!("{total} entries, newest first, page {page} of {pages}"),
        &["#", "At (UTC)", "Actor", "Action", "Resource", "Details"],
        &rows,
    ));
    let link = |p: u32, label: &str, rel: &str| {
        let p = p.to_string();
        let mut pairs = chosen.clone();
        pairs.push(("page", &p));
        format!(
            "<a rel=\"{rel}\" href=\"{PREFIX}/audit{}\">{label}</a>",
            esc(&html::query(&pairs))
        )
    };
    main.push_str("<nav class=\"pager\" aria-label=\"Pages\">");
    if page > 1 {
        main.push_str(&link(page - 1, "← Newer", "prev"));
    }
    if u64::from(page) < pages {
        main.push_str(&link(page + 1, "Older →", "next"));
    }
    main.push_str("</nav>");
    Ok(view.page("Audit log", "audit", &main))
}

/// The table rows of an audit API answer's `items`: sequence, time, actor, action, the
/// resource when `with_resource` (a certificate's own trail leaves it out), and the details.
pub(super) fn rows(answer: &serde_json::Value, with_resource: bool) -> Vec<Vec<String>> {
    answer["items"]
        .as_array()
        .into_iter()
        .flatten()
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
