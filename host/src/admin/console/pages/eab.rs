//! External Account Binding keys (RFC 8555 §7.3.4): a listing paged on the server without
//! their secrets (`GET /api/v1/eab-keys`), creation (`POST /api/v1/eab-keys`) whose answer
//! page is the only place the HMAC key is ever shown, and revocation
//! (`POST /api/v1/eab-keys/{kid}/revoke`).

use super::super::html::{self, esc, segment, text};
use super::super::{see_other, View, PREFIX};
use super::{badge, done_notice, items, joined, link, may_act, when, Listing};
use crate::admin::ApiError;
use crate::reply::Reply;

pub async fn list(view: &View<'_>) -> Result<Reply, ApiError> {
    let listing = Listing::new(&view.query, "/eab-keys", &[]);
    let answer = view.get("/api/v1/eab-keys", listing.api_query()).await?;
    let admin = may_act(view, "creating and revoking EAB keys");
    let rows: Vec<Vec<String>> = items(&answer)
        .map(|k| {
            let state = k["state"].as_str().unwrap_or("unknown");
            let mut row = vec![
                format!("<code>{}</code>", text(&k["kid"])),
                text(&k["label"]),
                badge(state),
                link("accounts", &k["account_id"]),
                joined(&k["allowed_names"], "any"),
                text(&k["profile"]),
                when(&k["created_at"]),
            ];
            if admin.is_ok() {
                row.push(if state == "revoked" {
                    "–".into()
                } else {
                    let kid = k["kid"].as_str().unwrap_or_default();
                    html::row_action_form(
                        &format!("{PREFIX}/eab-keys/{}/revoke", segment(kid)),
                        &view.form_token,
                        "Revoke",
                        &format!("EAB key {kid}"),
                        true,
                    )
                });
            }
            row
        })
        .collect();
    let mut headers = vec![
        "Key id",
        "Label",
        "State",
        "Account",
        "Allowed names",
        "Profile",
        "Created (UTC)",
    ];
    if admin.is_ok() {
        headers.push("Action");
    }
    let mut main = done_notice(
        view,
        &[(
            "revoked",
            "The EAB key is revoked: no new account can bind with it.",
        )],
    );
    main.push_str(&html::table(
        &listing.caption(&answer, "key(s), newest first"),
        &headers,
        &rows,
    ));
    main.push_str(&listing.pager(&answer, ("← Newer", "Older →")));
    main.push_str(&match admin {
        Ok(()) => create_form(view),
        Err(why) => why,
    });
    Ok(view.page("EAB keys", "eab-keys", &main))
}

fn create_form(view: &View<'_>) -> String {
    format!(
        "<section aria-labelledby=\"create\"><h2 id=\"create\">Create a key</h2>{}</section>",
        html::action_form(
            &format!("{PREFIX}/eab-keys"),
            &view.form_token,
            "<label>Label <input name=\"label\" placeholder=\"team or host\"></label>\
             <label>Allowed names <input name=\"allowed_names\" placeholder=\"*.shop.example, 10.0.0.0/8 (empty: any)\"></label>\
             <label>Profile <input name=\"profile\" placeholder=\"empty: the order chooses\"></label>",
            "Create key",
            false,
        )
    )
}

/// The create form's action: the API's creation, answered with a page (not a redirect) that
/// shows the HMAC key this once. Nothing keeps it for a later page: the listing never has it,
/// and the page is not cached (`cache-control: no-store` on every console answer).
pub async fn create(view: &View<'_>) -> Result<Reply, ApiError> {
    let field = |k: &str| {
        view.form
            .get(k)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let allowed_names: Vec<String> = field("allowed_names")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let key = view
        .post(
            "/api/v1/eab-keys",
            serde_json::json!({
                "label": field("label"),
                "allowed_names": allowed_names,
                "profile": field("profile"),
            }),
        )
        .await?;
    let main = format!(
        "{}{}<p><a href=\"{PREFIX}/eab-keys\">Back to the EAB keys</a></p>",
        html::notice(
            "info",
            "Copy the HMAC key now: it is shown on this page only, and never again.",
        ),
        html::fields(&[
            (
                "Key id",
                format!("<code class=\"wrap\">{}</code>", text(&key["kid"]))
            ),
            (
                "HMAC key (base64url)",
                format!(
                    "<code class=\"wrap secret\">{}</code>",
                    text(&key["hmac_key"])
                ),
            ),
            ("Label", text(&key["label"])),
            ("Allowed names", joined(&key["allowed_names"], "any")),
            ("Profile", text(&key["profile"])),
            (
                "certbot",
                format!(
                    "<code class=\"wrap\">--eab-kid {} --eab-hmac-key {}</code>",
                    esc(key["kid"].as_str().unwrap_or_default()),
                    esc(key["hmac_key"].as_str().unwrap_or_default())
                ),
            ),
        ]),
    );
    Ok(view.page("EAB key created", "eab-keys", &main))
}

/// The revoke button's action: the API's revocation, then back to the list.
pub async fn revoke(view: &View<'_>, kid: &str) -> Result<Reply, ApiError> {
    view.post(
        &format!("/api/v1/eab-keys/{kid}/revoke"),
        serde_json::json!({}),
    )
    .await?;
    Ok(see_other(format!("{PREFIX}/eab-keys?done=revoked")))
}
