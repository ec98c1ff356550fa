//! The operator console over real TLS, as a browser would use it (driven by curl here, and by
//! Chromium in `console_in_chromium`): pages with data from real lego orders, their security
//! headers, escaping of hostile names, roles (admin acts, auditor reads, client and no
//! certificate are refused) and the anti-forgery checks of its forms.

use acmegate::admin::Role;
use serde_json::json;

use crate::admin_api::{call, identity, Identity};
use crate::lego::lego_http_run;
use crate::support::{serial, Backend, Harness};

/// The Content-Security-Policy every console answer carries.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A subject no page may render as markup (no `/`: it also names the identity's files).
pub(crate) const HOSTILE_CN: &str = "<img src=x onerror=alert('cn')>\"x";

/// What curl got from the console: status, response headers (lower-case names), body.
pub(crate) struct Page {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The anti-forgery token of the page's forms.
    fn form_token(&self) -> String {
        let start = self
            .body
            .find("name=\"form-token\" content=\"")
            .expect("token meta")
            + 27;
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_string()
    }
}

/// `method path` on the admin listener as `who`, with a urlencoded `form` and extra headers.
pub(crate) async fn fetch(
    h: &Harness,
    who: Option<&Identity>,
    method: &str,
    path: &str,
    form: Option<&str>,
    headers: &[&str],
) -> Page {
    let port = h.gw.admin_addr.expect("admin listener").port();
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("headers");
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-X", method, "-o", "-", "-D"])
        .arg(&head)
        .arg("--cacert")
        .arg(&h.root_pem);
    if let Some(id) = who {
        cmd.arg("--cert").arg(&id.cert).arg("--key").arg(&id.key);
    }
    for header in headers {
        cmd.args(["-H", header]);
    }
    if let Some(form) = form {
        cmd.args(["--data-raw", form]);
    }
    let out = cmd
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .await
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {method} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headers = std::fs::read_to_string(&head).unwrap();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// The certificates the console shows: two real lego orders and an identity with a hostile
/// name. Returns the lego certificates' serials.
pub(crate) async fn seed(h: &Harness) -> Vec<String> {
    let mut serials = Vec::new();
    for name in ["shop.console.test", "api.console.test"] {
        let cert = lego_http_run(h, name, "lego run for the console").await;
        serials.push(serial(&cert));
    }
    identity(h, HOSTILE_CN, Role::Client).await;
    serials
}

/// Whether the CRL the gateway publishes lists `serial`, as openssl reads it.
pub(crate) async fn crl_lists(h: &Harness, serial: &str) -> bool {
    let crl = h.path("console-crl.der");
    let der = acmegate::authority::crl::current(&h.gw.gateway)
        .await
        .unwrap();
    std::fs::write(&crl, der).unwrap();
    let text = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&crl)
        .output()
        .unwrap();
    String::from_utf8_lossy(&text.stdout)
        .to_ascii_lowercase()
        .contains(serial)
}

async fn pages_roles_and_forms(backend: Backend) {
    // One plugin, so that the plugin pages and their reload form have something to show.
    let allowlist = crate::support::plugin_component("allowlist-validator");
    let h = Harness::start_with(backend, move |c| {
        c.plugins = vec![acmegate::plugins::PluginConfig {
            name: "policy".into(),
            kind: "challenge-validator".into(),
            file: allowlist,
            config: toml::toml! { default = ["*.console.test"] },
            grants: toml::Table::new(),
        }];
    })
    .await;
    let serials = seed(&h).await;
    let admin = identity(&h, "ops-console", Role::Admin).await;
    let auditor = identity(&h, "inspector", Role::Auditor).await;
    let client = identity(&h, "billing", Role::Client).await;
    let origin = format!(
        "Origin: https://localhost:{}",
        h.gw.admin_addr.unwrap().port()
    );

    // Every page answers an admin and an auditor, with the security headers, and renders the
    // hostile subject as text.
    let detail = format!("/console/certificates/{}", serials[0]);
    for who in [&admin, &auditor] {
        for path in [
            "/console/",
            "/console/certificates",
            "/console/certificates?name=console.test&status=valid",
            detail.as_str(),
            "/console/audit",
            "/console/audit?action=certificate.issue",
            "/console/plugins",
        ] {
            let page = fetch(&h, Some(who), "GET", path, None, &[]).await;
            assert_eq!(page.status, 200, "GET {path}: {}", page.body);
            assert_eq!(page.header("content-security-policy"), Some(CSP), "{path}");
            assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(page.header("referrer-policy"), Some("same-origin"));
            assert!(
                page.header("content-type")
                    .unwrap()
                    .starts_with("text/html"),
                "{path}"
            );
            assert!(
                !page.body.contains("<script") && !page.body.contains("<img"),
                "{path} has markup from data"
            );
            assert!(!page.body.contains("style="), "{path} has an inline style");
        }
    }
    let overview = fetch(&h, Some(&admin), "GET", "/console/", None, &[]).await;
    assert!(
        overview.body.contains("<svg class=\"chart\""),
        "{}",
        overview.body
    );
    // Both lego certificates (90 days) and the four identities (a year) are valid; the
    // timeline shows the two that expire within 90 days.
    assert!(
        overview
            .body
            .contains("2 certificates expire in the next 90 days"),
        "{}",
        overview.body
    );
    assert!(overview
        .body
        .contains("<span class=\"count\">6</span> <span class=\"label\">valid"));
    let list = fetch(&h, Some(&admin), "GET", "/console/certificates", None, &[]).await;
    assert!(
        list.body
            .contains("&lt;img src=x onerror=alert(&#39;cn&#39;)&gt;&quot;x"),
        "{}",
        list.body
    );
    assert!(list.body.contains("shop.console.test") && list.body.contains(&serials[1]));
    for (issuer, found) in [
        ("builtin", "6 certificate(s)"),
        ("elsewhere", "0 certificate(s)"),
    ] {
        let page = fetch(
            &h,
            Some(&admin),
            "GET",
            &format!("/console/certificates?issuer={issuer}"),
            None,
            &[],
        )
        .await;
        assert!(page.body.contains(found), "{issuer}: {}", page.body);
    }
    let search = fetch(
        &h,
        Some(&admin),
        "GET",
        "/console/certificates?name=shop",
        None,
        &[],
    )
    .await;
    assert!(
        search.body.contains("1 certificate(s), page 1 of 1"),
        "{}",
        search.body
    );
    let bad = fetch(
        &h,
        Some(&admin),
        "GET",
        "/console/certificates?expiring_before=soon",
        None,
        &[],
    )
    .await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("is not a time"), "{}", bad.body);
    let page = fetch(&h, Some(&admin), "GET", &detail, None, &[]).await;
    assert!(page.body.contains("-----BEGIN CERTIFICATE-----"));
    assert!(
        page.body.contains("certificate.issue"),
        "audit trail: {}",
        page.body
    );
    assert!(page.body.contains("Revoke this certificate"));
    let audit = fetch(&h, Some(&admin), "GET", "/console/audit", None, &[]).await;
    assert!(
        audit.body.contains("The audit chain is intact"),
        "{}",
        audit.body
    );
    // The stylesheet is served under the same policy.
    let css = fetch(
        &h,
        Some(&admin),
        "GET",
        "/console/static/console.css",
        None,
        &[],
    )
    .await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));

    // No certificate, or a client's: no page.
    let none = fetch(&h, None, "GET", "/console/", None, &[]).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("content-security-policy"), Some(CSP));
    let refused = fetch(&h, Some(&client), "GET", "/console/", None, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("client role"), "{}", refused.body);

    // The auditor sees no revoke form, and the API refuses the change whichever way it comes:
    // straight to the API, or through a console form with the auditor's own valid token.
    let seen = fetch(&h, Some(&auditor), "GET", &detail, None, &[]).await;
    assert!(!seen.body.contains("Revoke this certificate"));
    let api = call(
        &h,
        Some(&auditor),
        "POST",
        &format!("/api/v1/certificates/{}/revoke", serials[0]),
        Some(json!({"reason": "keyCompromise"})),
        403,
    )
    .await;
    assert!(
        api["detail"]
            .as_str()
            .unwrap()
            .contains("auditor role is read-only"),
        "{api}"
    );
    let action = format!("/console/certificates/{}/revoke", serials[0]);
    let form = format!("form_token={}&reason=keyCompromise", seen.form_token());
    let forged = fetch(&h, Some(&auditor), "POST", &action, Some(&form), &[&origin]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(
        forged.body.contains("auditor role is read-only"),
        "{}",
        forged.body
    );
    assert!(!crl_lists(&h, &serials[0]).await);

    // An admin's form needs its own token and a same-origin browser.
    let token = page.form_token();
    let form = format!("form_token={token}&reason=keyCompromise");
    for (headers, why) in [
        (vec![], "no Origin nor Sec-Fetch-Site"),
        (vec!["Origin: https://evil.example"], "another origin"),
        (vec!["Sec-Fetch-Site: cross-site"], "a cross-site post"),
    ] {
        let page = fetch(&h, Some(&admin), "POST", &action, Some(&form), &headers).await;
        assert_eq!(page.status, 403, "{why}: {}", page.body);
        assert!(page.body.contains("forged_request"), "{why}");
    }
    let wrong = format!("form_token={}&reason=keyCompromise", seen.form_token());
    let page = fetch(&h, Some(&admin), "POST", &action, Some(&wrong), &[&origin]).await;
    assert_eq!(page.status, 403, "the auditor's token is not the admin's");
    assert!(!crl_lists(&h, &serials[0]).await);

    let done = fetch(
        &h,
        Some(&admin),
        "POST",
        &action,
        Some(&form),
        &[&origin, "Sec-Fetch-Site: same-origin"],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some(format!("/console/certificates/{}?done=revoked", serials[0]).as_str())
    );
    assert!(
        crl_lists(&h, &serials[0]).await,
        "the CRL lists the console's revocation"
    );
    let after = fetch(
        &h,
        Some(&admin),
        "GET",
        &format!("{detail}?done=revoked"),
        None,
        &[],
    )
    .await;
    assert!(after.body.contains("badge-bad\">revoked"), "{}", after.body);
    assert!(after.body.contains("certificate.revoke") && after.body.contains("admin:ops-console"));

    // Plugins: health on the overview, a reload through the console form (a new generation),
    // refused to the auditor by the API.
    let overview = fetch(&h, Some(&admin), "GET", "/console/", None, &[]).await;
    assert!(
        overview.body.contains(
            "policy</a></td><td>challenge-validator</td><td><span class=\"badge badge-ok\">ok"
        ),
        "{}",
        overview.body
    );
    let plugins = fetch(&h, Some(&admin), "GET", "/console/plugins", None, &[]).await;
    assert!(
        plugins
            .body
            .contains("action=\"/console/plugins/policy/reload\""),
        "{}",
        plugins.body
    );
    let generation =
        |body: &str| body.contains("<td><span class=\"badge badge-ok\">ok</span></td><td>2</td>");
    assert!(!generation(&plugins.body), "{}", plugins.body);
    let reload = format!("form_token={}", plugins.form_token());
    let done = fetch(
        &h,
        Some(&admin),
        "POST",
        "/console/plugins/policy/reload",
        Some(&reload),
        &[&origin],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some("/console/plugins?done=reloaded")
    );
    let after = fetch(
        &h,
        Some(&admin),
        "GET",
        "/console/plugins?done=reloaded",
        None,
        &[],
    )
    .await;
    assert!(generation(&after.body), "{}", after.body);
    let auditor_plugins = fetch(&h, Some(&auditor), "GET", "/console/plugins", None, &[]).await;
    assert!(
        !auditor_plugins.body.contains("/reload\""),
        "no reload form for auditors"
    );
    let reload = format!("form_token={}", auditor_plugins.form_token());
    let refused = fetch(
        &h,
        Some(&auditor),
        "POST",
        "/console/plugins/reload",
        Some(&reload),
        &[&origin],
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("auditor role is read-only"),
        "{}",
        refused.body
    );

    // Over the API, the auditor reads every admin route and is refused every change.
    for route in acmegate::admin::ROUTES
        .iter()
        .filter(|r| r.role == Role::Admin)
    {
        let path = route
            .path
            .replace("{id}", "x1")
            .replace("{serial}", &serials[1])
            .replace("{kid}", "k1")
            .replace("{name}", "policy");
        let body = (route.method == "POST").then(|| json!({}));
        if route.method == "GET" {
            let answer =
                crate::admin_api::curl_status(&h, Some(&auditor), route.method, &path, body).await;
            assert!(
                answer == 200 || answer == 404,
                "auditor {} {path}: {answer}",
                route.method
            );
        } else {
            let answer = call(&h, Some(&auditor), route.method, &path, body, 403).await;
            assert!(
                answer["detail"]
                    .as_str()
                    .unwrap()
                    .contains("auditor role is read-only"),
                "{path}: {answer}"
            );
        }
    }
    assert_eq!(
        crate::support::stored_status(&h, &serials[1]).await,
        "valid"
    );
    h.gw.shutdown().await;
}

crate::on_both_backends!(pages_roles_and_forms_over_curl, pages_roles_and_forms);

/// Profiles beside the default (90 days): name and lifetime in days.
const LIFETIMES: [(&str, u32); 4] = [
    ("days-4", 4),
    ("days-12", 12),
    ("days-33", 33),
    ("days-61", 61),
];

fn with_lifetimes(c: &mut acmegate::config::Config) {
    let default = acmegate::ca::Profile::default_server();
    c.profiles = std::iter::once(default.clone())
        .chain(LIFETIMES.iter().map(|(name, days)| acmegate::ca::Profile {
            name: name.to_string(),
            validity_hours: days * 24,
            ..default.clone()
        }))
        .collect();
}

/// Where the browser test writes its screenshots: a folder under the cargo target dir.
fn screenshot_dir() -> std::path::PathBuf {
    crate::support::target_dir().join("console-screenshots")
}

/// Debian's Chromium, driven by playwright-core (console.mjs) with the operators' client
/// certificates: an admin revokes through the form (the CRL then lists it), an auditor sees
/// every page and is refused every change, a client certificate and no certificate get no
/// console, and a cross-site form post is refused. Screenshots of each page land in
/// `$CARGO_TARGET_DIR/console-screenshots`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium() {
    let playwright = crate::support::installed_tool("playwright.sh", "playwright");
    let h = Harness::start_with(Backend::Sqlite, with_lifetimes).await;
    let serials = seed(&h).await;
    let (revoke, keep) = (&serials[0], &serials[1]);
    let admin = identity(&h, "ops-console", Role::Admin).await;
    // Certificates of shorter lifetimes beside the lego ones, so that the timeline (and the
    // README's screenshot) has days to tell apart.
    for (i, (profile, _)) in LIFETIMES.iter().cycle().take(9).enumerate() {
        call(
            &h,
            Some(&admin),
            "POST",
            "/api/v1/certificates/generate",
            Some(json!({"dns_names": [format!("svc{i}.internal.test")], "profile": profile})),
            201,
        )
        .await;
    }
    let auditor = identity(&h, "inspector", Role::Auditor).await;
    let client = identity(&h, "billing", Role::Client).await;
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    let base = format!("https://localhost:{}", h.gw.admin_addr.unwrap().port());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/console.mjs");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(&script)
        .env("CONSOLE_URL", &base)
        .env("PLAYWRIGHT_DIR", &playwright)
        .env("SHOTS", &shots)
        .env("REVOKE", revoke)
        .env("KEEP", keep);
    for (role, id) in [
        ("ADMIN", &admin),
        ("AUDITOR", &auditor),
        ("CLIENT", &client),
    ] {
        cmd.env(format!("{role}_CERT"), &id.cert)
            .env(format!("{role}_KEY"), &id.key);
    }
    let out = crate::support::run(&mut cmd, "node console.mjs (Chromium)").await;
    let seen: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default(),
    )
    .expect("console.mjs prints what it saw");
    assert_eq!(seen["admin_revoked"], revoke.as_str());
    assert_eq!(seen["cross_site"], 403);
    assert_eq!(seen["auditor"], json!([403, 403]));
    assert_eq!(seen["client"], 403);
    // What the browser did is what the gateway holds: one revocation, in the CRL.
    assert!(
        crl_lists(&h, revoke).await,
        "the CRL lists the browser's revocation"
    );
    assert!(
        !crl_lists(&h, keep).await,
        "a refused request revoked nothing"
    );
    assert_eq!(crate::support::stored_status(&h, keep).await, "valid");
    for shot in [
        "overview",
        "overview-phone",
        "certificates",
        "certificate",
        "certificate-revoked",
        "audit",
        "plugins",
        "auditor-certificate",
    ] {
        let png = std::fs::read(shots.join(format!("{shot}.png"))).expect("screenshot written");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5_000,
            "{shot}.png is an image"
        );
    }
    h.gw.shutdown().await;
}

/// With 10,000 certificates (and as many audit entries) every page still answers well under a
/// second: counts and pages are computed in the database, never by loading the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_fast_with_ten_thousand_certificates() {
    const COUNT: i64 = 10_000;
    let h = Harness::start(Backend::Sqlite).await;
    let admin = identity(&h, "ops-console", Role::Admin).await;
    let store = h.gw.gateway.store.clone();
    let now = h.gw.gateway.now();
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || {
        for i in 0..COUNT {
            let row = acmegate::store::Certificate {
                id: format!("bulk{i}"),
                serial: format!("b{i:08x}"),
                account_id: None,
                order_id: None,
                chain_pem: String::new(),
                identifiers: format!(r#"[{{"type":"dns","value":"host{i}.bulk.test"}}]"#),
                not_before: now - 86_400,
                // Spread over the next 120 days, some already expired.
                not_after: now - 86_400 + (i % 121) * 86_400,
                status: acmegate::acme::CertificateStatus::Valid,
                revoked_at: None,
                revocation_reason: None,
                created_at: now - (i % 10) * 86_400,
                issuer: "builtin".into(),
                origin: "admin".into(),
                subject: String::new(),
            };
            store.insert_certificate(&row, &[]).expect("stored");
        }
    })
    .await
    .unwrap();
    eprintln!("stored {COUNT} certificates in {:?}", started.elapsed());
    for path in [
        "/console/",
        "/console/certificates",
        "/console/certificates?page=150",
        "/console/certificates?name=host9999.bulk",
        "/console/audit",
        "/console/audit?page=100",
    ] {
        let started = std::time::Instant::now();
        let page = fetch(&h, Some(&admin), "GET", path, None, &[]).await;
        let took = started.elapsed();
        eprintln!("GET {path}: {took:?}");
        assert_eq!(page.status, 200, "{path}");
        assert!(
            took < std::time::Duration::from_secs(1),
            "GET {path} took {took:?}"
        );
    }
    let list = fetch(&h, Some(&admin), "GET", "/console/certificates", None, &[]).await;
    assert!(
        list.body.contains("10001 certificate(s), page 1 of 201"),
        "{}",
        &list.body[..2000.min(list.body.len())]
    );
    h.gw.shutdown().await;
}
