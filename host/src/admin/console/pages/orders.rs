//! ACME orders: a listing paged on the server (`GET /api/v1/orders`), and one order with its
//! authorizations, their challenges and the problem documents that failed them
//! (`GET /api/v1/orders/{id}`).

use serde_json::Value;

use super::super::html::{self, esc, text};
use super::super::View;
use super::{badge, items, joined, link, when, Listing};
use crate::admin::ApiError;
use crate::reply::Reply;

/// The order states a filter may name (RFC 8555 §7.1.6).
const STATES: [(&str, &str); 6] = [
    ("", "any"),
    ("pending", "pending"),
    ("ready", "ready"),
    ("processing", "processing"),
    ("valid", "valid"),
    ("invalid", "invalid"),
];

/// The table of an order listing answer, under `caption`.
pub(super) fn table(caption: &str, answer: &Value) -> String {
    let rows: Vec<Vec<String>> = items(answer)
        .map(|o| {
            vec![
                link("orders", &o["id"]),
                badge(o["status"].as_str().unwrap_or("unknown")),
                joined(&o["identifiers"], "–"),
                text(&o["profile"]),
                link("accounts", &o["account_id"]),
                when(&o["created_at"]),
                problem_type(&o["error"]),
            ]
        })
        .collect();
    html::table(
        caption,
        &[
            "Order",
            "State",
            "Identifiers",
            "Profile",
            "Account",
            "Created (UTC)",
            "Problem",
        ],
        &rows,
    )
}

/// The short name of a problem document's type (`caa` for
/// `urn:ietf:params:acme:error:caa`), a dash for none.
fn problem_type(problem: &Value) -> String {
    match problem["type"].as_str() {
        Some(t) => format!("<code>{}</code>", esc(t.rsplit(':').next().unwrap_or(t))),
        None => "–".into(),
    }
}

/// A problem document (RFC 7807) as a person reads it: type, detail, and its subproblems.
fn problem(problem: &Value) -> String {
    if problem.is_null() {
        return "–".into();
    }
    let mut out = format!(
        "<p class=\"problem\"><code>{}</code> {}</p>",
        text(&problem["type"]),
        text(&problem["detail"])
    );
    for sub in problem["subproblems"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "<p class=\"problem\">{}: <code>{}</code> {}</p>",
            text(&sub["identifier"]["value"]),
            text(&sub["type"]),
            text(&sub["detail"])
        ));
    }
    out
}

pub async fn list(view: &View<'_>) -> Result<Reply, ApiError> {
    let listing = Listing::new(&view.query, "/orders", &["status", "account"]);
    let form = listing.search_form(
        &[
            listing.select("status", "State", &STATES),
            listing.input("account", "Account", "account id"),
        ]
        .concat(),
        "Filter",
    );
    let answer = match view.get("/api/v1/orders", listing.api_query()).await {
        Ok(answer) => answer,
        Err(e) if e.status == http::StatusCode::BAD_REQUEST => {
            let main = format!("{}{form}", html::notice("bad", &e.detail));
            return Ok(view.page("Orders", "orders", &main));
        }
        Err(e) => return Err(e),
    };
    let main = format!(
        "{form}{}{}",
        table(&listing.caption(&answer, "order(s), newest first"), &answer),
        listing.pager(&answer, ("← Newer", "Older →")),
    );
    Ok(view.page("Orders", "orders", &main))
}

pub async fn show(view: &View<'_>, id: &str) -> Result<Reply, ApiError> {
    let order = view
        .get(&format!("/api/v1/orders/{id}"), Default::default())
        .await?;
    let id = order["id"].as_str().unwrap_or(id).to_owned();
    let mut main = html::fields(&[
        ("Order", format!("<code>{}</code>", esc(&id))),
        (
            "State",
            badge(order["status"].as_str().unwrap_or("unknown")),
        ),
        ("Identifiers", joined(&order["identifiers"], "–")),
        ("Profile", text(&order["profile"])),
        ("Account", link("accounts", &order["account_id"])),
        ("Created (UTC)", when(&order["created_at"])),
        ("Expires (UTC)", when(&order["expires"])),
        ("Replaces (RFC 9773)", text(&order["replaces"])),
        (
            "Certificate",
            link("certificates", &order["certificate_serial"]),
        ),
        ("Problem", problem(&order["error"])),
    ]);
    let mut rows = Vec::new();
    for a in order["authorizations"].as_array().into_iter().flatten() {
        let wildcard = if a["wildcard"] == true { "*." } else { "" };
        let name = format!("{wildcard}{}", text(&a["identifier"]["value"]));
        for c in a["challenges"].as_array().into_iter().flatten() {
            rows.push(vec![
                name.clone(),
                badge(a["status"].as_str().unwrap_or("unknown")),
                when(&a["expires"]),
                text(&c["type"]),
                badge(c["status"].as_str().unwrap_or("unknown")),
                when(&c["validated"]),
                problem(&c["error"]),
            ]);
        }
    }
    main.push_str(&format!(
        "<section aria-labelledby=\"authz\"><h2 id=\"authz\">Authorizations and challenges</h2>{}</section>",
        html::table(
            "One row per challenge of each authorization (RFC 8555 §7.1.4, §8)",
            &[
                "Identifier",
                "Authorization",
                "Expires (UTC)",
                "Challenge",
                "State",
                "Validated (UTC)",
                "Problem",
            ],
            &rows,
        )
    ));
    Ok(view.page(&format!("Order {id}"), "orders", &main))
}
