//! ACME accounts: a listing paged on the server with each account's number of orders, linked
//! to them (`GET /api/v1/accounts`), one account with its orders (`GET /api/v1/accounts/{id}`,
//! `GET /api/v1/orders?account=`), and deactivation (`POST /api/v1/accounts/{id}/deactivate`).

use super::super::html::{self, esc, segment, text};
use super::super::{see_other, View, PREFIX};
use super::{badge, done_notice, items, joined, link, may_act, when, Listing};
use crate::admin::ApiError;
use crate::reply::Reply;

pub async fn list(view: &View<'_>) -> Result<Reply, ApiError> {
    let listing = Listing::new(&view.query, "/accounts", &["status"]);
    let form = listing.search_form(
        &listing.select(
            "status",
            "State",
            &[
                ("", "any"),
                ("valid", "valid"),
                ("deactivated", "deactivated"),
                ("revoked", "revoked"),
            ],
        ),
        "Filter",
    );
    let answer = view.get("/api/v1/accounts", listing.api_query()).await?;
    let rows: Vec<Vec<String>> = items(&answer)
        .map(|a| {
            vec![
                link("accounts", &a["id"]),
                badge(a["status"].as_str().unwrap_or("unknown")),
                joined(&a["contact"], "–"),
                text(&a["eab_kid"]),
                when(&a["created_at"]),
                format!(
                    "<a href=\"{PREFIX}/orders{}\">{}</a>",
                    esc(&html::query(&[(
                        "account",
                        a["id"].as_str().unwrap_or_default()
                    )])),
                    text(&a["orders"])
                ),
            ]
        })
        .collect();
    let main = format!(
        "{form}{}{}",
        html::table(
            &listing.caption(&answer, "account(s), newest first"),
            &[
                "Account",
                "State",
                "Contacts",
                "EAB key",
                "Created (UTC)",
                "Orders"
            ],
            &rows,
        ),
        listing.pager(&answer, ("← Newer", "Older →")),
    );
    Ok(view.page("Accounts", "accounts", &main))
}

pub async fn show(view: &View<'_>, id: &str) -> Result<Reply, ApiError> {
    let account = view
        .get(&format!("/api/v1/accounts/{id}"), Default::default())
        .await?;
    let id = account["id"].as_str().unwrap_or(id).to_owned();
    let listing = Listing::new(&view.query, &format!("/accounts/{}", segment(&id)), &[]);
    let mut query = listing.api_query();
    query.insert("account".into(), id.clone());
    let orders = view.get("/api/v1/orders", query).await?;
    let mut main = done_notice(
        view,
        &[(
            "deactivated",
            "The account is deactivated: its key can no longer order or revoke.",
        )],
    );
    main.push_str(&html::fields(&[
        ("Account", format!("<code>{}</code>", esc(&id))),
        (
            "State",
            badge(account["status"].as_str().unwrap_or("unknown")),
        ),
        ("Contacts", joined(&account["contact"], "–")),
        (
            "Key thumbprint (RFC 7638)",
            format!(
                "<code class=\"wrap\">{}</code>",
                text(&account["jwk_thumbprint"])
            ),
        ),
        ("EAB key", text(&account["eab_kid"])),
        (
            "Terms of service agreed",
            text(&account["terms_of_service_agreed"]),
        ),
        ("Created (UTC)", when(&account["created_at"])),
        ("Orders", text(&orders["total"])),
    ]));
    if account["status"] == "valid" {
        main.push_str(&match may_act(view, "deactivation") {
            Ok(()) => format!(
                "<section aria-labelledby=\"deactivate\"><h2 id=\"deactivate\">Deactivate</h2>\
                 <p>As if the subscriber asked (RFC 8555 §7.3.6): the account can no longer order \
                 or revoke; its certificates stay valid.</p>{}</section>",
                html::action_form(
                    &format!("{PREFIX}/accounts/{}/deactivate", segment(&id)),
                    &view.form_token,
                    "",
                    "Deactivate this account",
                    true,
                )
            ),
            Err(why) => why,
        });
    }
    main.push_str(&format!(
        "<section aria-labelledby=\"orders\"><h2 id=\"orders\">Orders</h2>{}{}</section>",
        super::orders::table(&listing.caption(&orders, "order(s), newest first"), &orders),
        listing.pager(&orders, ("← Newer", "Older →")),
    ));
    Ok(view.page(&format!("Account {id}"), "accounts", &main))
}

/// The deactivate form's action: the API's deactivation, then back to the account.
pub async fn deactivate(view: &View<'_>, id: &str) -> Result<Reply, ApiError> {
    let answer = view
        .post(
            &format!("/api/v1/accounts/{id}/deactivate"),
            serde_json::json!({}),
        )
        .await?;
    Ok(see_other(format!(
        "{PREFIX}/accounts/{}?done=deactivated",
        segment(answer["id"].as_str().unwrap_or(id))
    )))
}
