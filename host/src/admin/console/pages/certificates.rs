//! Certificates: a search paged on the server (`GET /api/v1/certificates`), one certificate with
//! its chain and audit trail, and its actions: renew now (`POST .../renew-now` filtered by its
//! serial), deploy (`POST .../{serial}/deploy`) and revocation with a reason
//! (`POST .../{serial}/revoke`).

use std::fmt::Write as _;

use serde_json::Value;

use super::super::html::{self, segment, text};
use super::super::{see_other, View, PREFIX};
use super::{done_notice, items, joined, link, may_act, query, when, Listing};
use crate::admin::ApiError;
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

pub async fn list(view: &View<'_>) -> Result<Reply, ApiError> {
    let listing = Listing::new(&view.query, "/certificates", &FILTERS);
    let form = search_form(&listing);
    let answer = match view.get("/api/v1/certificates", listing.api_query()).await {
        Ok(answer) => answer,
        // A filter the API refuses is shown above the form, not as an error page.
        Err(e) if e.status == http::StatusCode::BAD_REQUEST => {
            let main = format!("{}{form}", html::notice("bad", &e.detail));
            return Ok(view.page("Certificates", "certificates", &main));
        }
        Err(e) => return Err(e),
    };
    let now = view.gw.now();
    let rows: Vec<Vec<String>> = items(&answer)
        .map(|c| {
            vec![
                link("certificates", &c["serial"]),
                names(c),
                state(c, now),
                text(&c["issuer"]),
                text(&c["origin"]),
                when(&c["not_after"]),
            ]
        })
        .collect();
    let table = html::table(
        &listing.caption(&answer, "certificate(s)"),
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
    let pager = listing.pager(&answer, ("← Previous", "Next →"));
    let main = format!("{form}{table}{pager}");
    Ok(view.page("Certificates", "certificates", &main))
}

fn search_form(listing: &Listing<'_>) -> String {
    let fields = [
        listing.input("name", "Name", "www.example.internal"),
        listing.input("serial", "Serial", "hex"),
        listing.select(
            "status",
            "State",
            &[("", "any"), ("valid", "valid"), ("revoked", "revoked")],
        ),
        listing.select(
            "origin",
            "Origin",
            &[
                ("", "any"),
                ("acme", "ACME"),
                ("admin", "admin"),
                ("identity", "identity"),
                ("managed", "managed"),
            ],
        ),
        listing.input("issuer", "Issuer", "builtin"),
        listing.input("expiring_before", "Expiring before", "30d"),
    ];
    listing.search_form(&fields.concat(), "Search")
}

/// The identifiers, or the subject for certificates without any (identities).
fn names(c: &Value) -> String {
    let ids = joined(&c["identifiers"], "");
    if ids.is_empty() {
        text(&c["subject"])
    } else {
        ids
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
    let mut main = done_notice(
        view,
        &[
            ("revoked", "The certificate is revoked; the CRL lists it."),
            (
                "renew-now",
                "Its renewal window now lies in the past: its ACME client is told to renew at once (RFC 9773).",
            ),
            (
                "deployed",
                "Deployed once to each target; the audit trail below has each target's outcome.",
            ),
        ],
    );
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
        ("ACME account", link("accounts", &c["account_id"])),
        ("ACME order", link("orders", &c["order_id"])),
        (
            "Renewal window",
            match &c["renewal"] {
                Value::Null => "–".into(),
                r if r["moved"].is_null() => {
                    format!("{} – {}", when(&r["window_start"]), when(&r["window_end"]))
                }
                r => format!(
                    "{} – {} (moved: {})",
                    when(&r["window_start"]),
                    when(&r["window_end"]),
                    text(&r["moved"])
                ),
            },
        ),
    ]));
    if c["status"] == "valid" {
        let targets = view
            .get("/api/v1/targets", query(&[("serial", &serial)]))
            .await?;
        main.push_str(&actions(view, &serial, &targets));
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

/// A valid certificate's actions, for admins: renew now, deploy (to the `targets` that cover
/// it, each a checkbox), revoke. An auditor is told why there are none.
fn actions(view: &View<'_>, serial: &str, targets: &Value) -> String {
    if let Err(why) = may_act(view, "renewing, deploying and revoking") {
        return why;
    }
    let action = |verb: &str| format!("{PREFIX}/certificates/{}/{verb}", segment(serial));
    let mut options = String::new();
    for r in REASONS {
        let _ = write!(options, "<option value=\"{r}\">{r}</option>");
    }
    let mut boxes = String::new();
    for t in items(targets) {
        let _ = write!(
            boxes,
            "<label class=\"check\"><input type=\"checkbox\" name=\"targets\" value=\"{name}\" checked> \
             {name} <span class=\"hint\">({} to {})</span></label>",
            text(&t["deployer"]),
            joined(&t["names"], "any name"),
            name = text(&t["name"]),
        );
    }
    let deploy = if boxes.is_empty() {
        "<p>No target covers this certificate's names: there is nowhere to deploy it.</p>".into()
    } else {
        html::action_form(
            &action("deploy"),
            &view.form_token,
            &format!("<fieldset><legend>Targets that cover its names</legend>{boxes}</fieldset>"),
            "Deploy now",
            false,
        )
    };
    format!(
        "<section aria-labelledby=\"renew\"><h2 id=\"renew\">Renew now</h2>\
         <p>Moves this certificate's ARI renewal window into the past, so that its ACME client renews it at its next check.</p>{}</section>\
         <section aria-labelledby=\"deploy\"><h2 id=\"deploy\">Deploy</h2>\
         <p>Deploys the chain once to each target (and verifies it there).</p>{}</section>\
         <section aria-labelledby=\"revoke\"><h2 id=\"revoke\">Revoke</h2>{}</section>",
        html::action_form(&action("renew-now"), &view.form_token, "", "Renew now", false),
        deploy,
        html::action_form(
            &action("revoke"),
            &view.form_token,
            &format!("<label>Reason <select name=\"reason\">{options}</select></label>"),
            "Revoke this certificate",
            true,
        ),
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
    back(&answer, serial, "revoked")
}

/// The renew-now form's action: the API's renew-now filtered by this one serial.
pub async fn renew_now(view: &View<'_>, serial: &str) -> Result<Reply, ApiError> {
    let answer = view
        .post(
            "/api/v1/certificates/renew-now",
            serde_json::json!({ "serials": [serial] }),
        )
        .await?;
    if answer["count"] == 0 {
        return Err(ApiError::conflict(format!(
            "certificate {serial} is not valid and unexpired: nothing to renew"
        )));
    }
    back(&answer["serials"][0], serial, "renew-now")
}

/// The deploy form's action: the API's deploy, to the targets ticked (a field sent once per
/// target, or comma-separated). None ticked deploys nowhere: it is refused, not taken as the
/// API's "every covering target".
pub async fn deploy(view: &View<'_>, serial: &str) -> Result<Reply, ApiError> {
    let targets: Vec<&str> = view
        .form
        .get("targets")
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if targets.is_empty() {
        return Err(ApiError::bad_request(
            "tick at least one target to deploy to",
        ));
    }
    let answer = view
        .post(
            &format!("/api/v1/certificates/{serial}/deploy"),
            serde_json::json!({ "targets": targets }),
        )
        .await?;
    back(&answer, serial, "deployed")
}

/// Back to the certificate page (its serial as the API answered it in `answer`, a
/// certificate or the serial itself), with `done` for its notice.
fn back(answer: &Value, serial: &str, done: &str) -> Result<Reply, ApiError> {
    let serial = answer
        .as_str()
        .or_else(|| answer["serial"].as_str())
        .unwrap_or(serial);
    Ok(see_other(format!(
        "{PREFIX}/certificates/{}?done={done}",
        segment(serial)
    )))
}
