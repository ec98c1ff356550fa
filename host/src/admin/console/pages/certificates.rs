//! Certificates: a search paged on the server (`GET /api/v1/certificates`), one certificate with
//! its chain and audit trail, and revocation with a reason (`POST .../revoke`).

use std::fmt::Write as _;

use serde_json::Value;

use super::super::html::{self, esc, segment, text};
use super::super::{see_other, View, PREFIX};
use super::{query, when};
use crate::admin::{ApiError, Role};
use crate::reply::Reply;

/// The filters the search form offers, each passed to the API as is.
const FILTERS: [&str; 6] = [
    "name",
    "serial",
    "status",
    "origin",
    "issuer",
    "expiring_before",
];

/// Rows per page: a screenful, and cheap to render at any table size.
const PER_PAGE: u32 = 50;

pub async fn list(view: &View<'_>) -> Result<Reply, ApiError> {
    let chosen: Vec<(&str, &str)> = FILTERS
        .iter()
        .map(|k| {
            (
                *k,
                view.query.get(*k).map(String::as_str).unwrap_or_default(),
            )
        })
        .collect();
    let page: u32 = view
        .query
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let mut api_query = query(&[
        ("per_page", &PER_PAGE.to_string()),
        ("page", &page.to_string()),
    ]);
    for (k, v) in chosen.iter().filter(|(_, v)| !v.is_empty()) {
        api_query.insert(k.to_string(), v.to_string());
    }
    let form = search_form(&chosen);
    let answer = match view.get("/api/v1/certificates", api_query).await {
        Ok(answer) => answer,
        // A filter the API refuses is shown above the form, not as an error page.
        Err(e) if e.status == http::StatusCode::BAD_REQUEST => {
            let main = format!("{}{form}", html::notice("bad", &e.detail));
            return Ok(view.page("Certificates", "certificates", &main));
        }
        Err(e) => return Err(e),
    };
    let now = view.gw.now();
    let rows: Vec<Vec<String>> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                format!(
                    "<a href=\"{PREFIX}/certificates/{}\"><code>{}</code></a>",
                    segment(c["serial"].as_str().unwrap_or_default()),
                    text(&c["serial"])
                ),
                names(c),
                state(c, now),
                text(&c["issuer"]),
                text(&c["origin"]),
                when(&c["not_after"]),
            ]
        })
        .collect();
    let total = answer["total"].as_u64().unwrap_or(0);
    let pages = total.div_ceil(u64::from(PER_PAGE)).max(1);
    let table = html::table(
        &format!("{total} certificate(s), page {page} of {pages}"),
        &[
            "Serial",
            "Names",
            "State",
            "Issuer",
            "Origin",
            "Expires (UTC)",
        ],
        &rows,
    );
    let mut pager = String::from("<nav class=\"pager\" aria-label=\"Pages\">");
    let link = |p: u32, label: &str, rel: &str| {
        let p = p.to_string();
        let mut pairs = chosen.clone();
        pairs.push(("page", &p));
        format!(
            "<a rel=\"{rel}\" href=\"{PREFIX}/certificates{}\">{label}</a>",
            esc(&html::query(&pairs))
        )
    };
    if page > 1 {
        pager.push_str(&link(page - 1, "← Previous", "prev"));
    }
    if u64::from(page) < pages {
        pager.push_str(&link(page + 1, "Next →", "next"));
    }
    pager.push_str("</nav>");
    let main = format!("{form}{table}{pager}");
    Ok(view.page("Certificates", "certificates", &main))
}

fn search_form(chosen: &[(&str, &str)]) -> String {
    let value = |k: &str| {
        chosen
            .iter()
            .find(|(key, _)| *key == k)
            .map_or("", |(_, v)| *v)
    };
    let select = |name: &str, label: &str, options: &[(&str, &str)]| {
        let mut out = format!("<label>{label} <select name=\"{name}\">");
        for (v, l) in options {
            let selected = if value(name) == *v { " selected" } else { "" };
            let _ = write!(out, "<option value=\"{v}\"{selected}>{l}</option>");
        }
        out.push_str("</select></label>");
        out
    };
    format!(
        "<form class=\"search\" method=\"get\" action=\"{PREFIX}/certificates\" role=\"search\">\
         <label>Name <input name=\"name\" value=\"{}\" placeholder=\"www.example.internal\"></label>\
         <label>Serial <input name=\"serial\" value=\"{}\" placeholder=\"hex\"></label>\
         {}{}\
         <label>Issuer <input name=\"issuer\" value=\"{}\" placeholder=\"builtin\"></label>\
         <label>Expiring before <input name=\"expiring_before\" value=\"{}\" placeholder=\"30d\"></label>\
         <button type=\"submit\">Search</button></form>",
        esc(value("name")),
        esc(value("serial")),
        select(
            "status",
            "State",
            &[("", "any"), ("valid", "valid"), ("revoked", "revoked")]
        ),
        select(
            "origin",
            "Origin",
            &[("", "any"), ("acme", "ACME"), ("admin", "admin"), ("identity", "identity")]
        ),
        esc(value("issuer")),
        esc(value("expiring_before")),
    )
}

/// The identifiers, or the subject for certificates without any (identities).
fn names(c: &Value) -> String {
    let ids: Vec<String> = c["identifiers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| text(i.get("value").unwrap_or(i)))
        .collect();
    if ids.is_empty() {
        text(&c["subject"])
    } else {
        ids.join(", ")
    }
}

/// valid, expired or revoked, as a badge. Expired is the stored `valid` past its notAfter.
fn state(c: &Value, now: i64) -> String {
    let expired = c["not_after"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t.timestamp() <= now);
    let (class, word) = match c["status"].as_str() {
        Some("revoked") => ("bad", "revoked"),
        Some("valid") if expired => ("warn", "expired"),
        Some("valid") => ("ok", "valid"),
        _ => ("warn", "unknown"),
    };
    format!("<span class=\"badge badge-{class}\">{word}</span>")
}

/// The revocation reasons the form offers (RFC 5280 §5.3.1; the API refuses the others).
const REASONS: [&str; 8] = [
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
    "aACompromise",
];

pub async fn show(view: &View<'_>, serial: &str) -> Result<Reply, ApiError> {
    let path = format!("/api/v1/certificates/{serial}");
    let c = view.get(&path, Default::default()).await?;
    let serial = c["serial"].as_str().unwrap_or_default().to_owned();
    let trail = view
        .get(
            "/api/v1/audit",
            query(&[
                ("resource", &format!("certificate/{serial}")),
                ("per_page", "100"),
            ]),
        )
        .await?;
    let now = view.gw.now();
    let parsed = &c["parsed"];
    let mut main = String::new();
    if view.query.get("done").map(String::as_str) == Some("revoked") {
        main.push_str(&html::notice(
            "ok",
            "The certificate is revoked; the CRL lists it.",
        ));
    }
    main.push_str(&html::fields(&[
        ("Serial", format!("<code>{}</code>", text(&c["serial"]))),
        ("State", state(&c, now)),
        ("Names", names(&c)),
        ("Subject", text(&c["subject"])),
        ("Issuer", text(&c["issuer"])),
        ("Origin", text(&c["origin"])),
        ("Not before (UTC)", when(&c["not_before"])),
        ("Not after (UTC)", when(&c["not_after"])),
        ("Revoked at (UTC)", when(&c["revoked_at"])),
        ("Revocation reason", text(&c["revocation_reason"])),
        (
            "SHA-256 fingerprint",
            format!(
                "<code class=\"wrap\">{}</code>",
                text(&parsed["sha256_fingerprint"])
            ),
        ),
        ("ACME account", text(&c["account_id"])),
        ("ACME order", text(&c["order_id"])),
        (
            "Renewal window",
            match &c["renewal"] {
                Value::Null => "–".into(),
                r => format!("{} – {}", when(&r["window_start"]), when(&r["window_end"])),
            },
        ),
    ]));
    if c["status"] == "valid" {
        main.push_str(&revoke_form(view, &serial));
    }
    let rows = super::audit::rows(&trail, false);
    let _ = write!(
        main,
        "<section aria-labelledby=\"trail\"><h2 id=\"trail\">Audit trail</h2>{}</section>\
         <section aria-labelledby=\"chain\"><h2 id=\"chain\">Chain (PEM, leaf first)</h2><pre class=\"pem\">{}</pre></section>",
        html::table("What happened to this certificate", &["#", "At (UTC)", "Actor", "Action", "Details"], &rows),
        text(&c["chain_pem"]),
    );
    Ok(view.page(&format!("Certificate {serial}"), "certificates", &main))
}

/// The revocation form, for admins; an auditor is told why there is none (and the API would
/// refuse the change anyway).
fn revoke_form(view: &View<'_>, serial: &str) -> String {
    if view.caller.role != Role::Admin {
        return html::notice(
            "info",
            "Your role is read-only: revocation needs an admin certificate.",
        );
    }
    let mut options = String::new();
    for r in REASONS {
        let _ = write!(options, "<option value=\"{r}\">{r}</option>");
    }
    format!(
        "<section aria-labelledby=\"revoke\"><h2 id=\"revoke\">Revoke</h2>\
         <form class=\"action\" method=\"post\" action=\"{PREFIX}/certificates/{}/revoke\">{}\
         <label>Reason <select name=\"reason\">{options}</select></label>\
         <button type=\"submit\" class=\"danger\">Revoke this certificate</button></form></section>",
        segment(serial),
        html::token_field(&view.form_token),
    )
}

/// The revoke form's action: the API's revocation, then back to the certificate.
pub async fn revoke(view: &View<'_>, serial: &str) -> Result<Reply, ApiError> {
    let reason = view.form.get("reason").cloned().unwrap_or_default();
    let reason = if reason.is_empty() {
        Value::Null
    } else {
        Value::from(reason)
    };
    let answer = view
        .post(
            &format!("/api/v1/certificates/{serial}/revoke"),
            serde_json::json!({ "reason": reason }),
        )
        .await?;
    let serial = answer["serial"].as_str().unwrap_or(serial);
    Ok(see_other(format!(
        "{PREFIX}/certificates/{}?done=revoked",
        segment(serial)
    )))
}
