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

/// An order the gateway failed: its dns-01 challenge answered, but CAA names another CA
/// (RFC 8659), so its authorization is invalid with a `caa` problem. Returns the order's id.
async fn caa_refused_order(h: &Harness, acme: &acmegate::client::AcmeClient, name: &str) -> String {
    use base64::Engine as _;
    h.dns.set_caa(name, vec![(0, "issue", "other-ca.example")]);
    let reply = acme
        .new_order(&[acmegate::acme::Identifier::dns(name)], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let order_url = reply.location().expect("order URL");
    let order = reply.json().unwrap();
    let authz_url = order["authorizations"][0].as_str().unwrap();
    let authz = acme.post(authz_url, None).await.unwrap().json().unwrap();
    let chall = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "dns-01")
        .unwrap()
        .clone();
    let thumb = acmegate::jws::thumbprint(acme.key.jwk()).unwrap();
    let key_auth = format!("{}.{thumb}", chall["token"].as_str().unwrap());
    h.dns.add_txt(
        &format!("_acme-challenge.{name}"),
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            key_auth.as_bytes(),
        )),
    );
    acme.post(chall["url"].as_str().unwrap(), Some(&json!({})))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let done = acme
        .poll(authz_url, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(done["status"], "invalid", "{done}");
    // Read by its client, the order is invalid too (RFC 8555 §7.1.6), with its own problem.
    let order = acme.post(&order_url, None).await.unwrap().json().unwrap();
    assert_eq!(order["status"], "invalid", "{order}");
    order_url.rsplit('/').next().unwrap().to_string()
}

/// The text of the first `<code>` after `label` in a page (the fields of the EAB answer page).
fn code_after(body: &str, label: &str) -> String {
    let at = body
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {body}"));
    let rest = &body[at..];
    let start = rest.find("<code").unwrap();
    let start = start + rest[start..].find('>').unwrap() + 1;
    let end = start + rest[start..].find("</code>").unwrap();
    rest[start..end].to_string()
}

/// Waits (up to 30 s) until the admin API's answer to `GET path` satisfies `done`.
async fn api_until(
    h: &Harness,
    who: &Identity,
    path: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..300 {
        let answer = call(h, Some(who), "GET", path, None, 200).await;
        if done(&answer) {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: GET {path} never got there");
}

/// The console's accounts, orders, EAB keys, managed certificates, plugin switches and the
/// certificate actions, with data from real lego and ACME orders: every page renders for an
/// admin and an auditor, every action works for the admin (its effect checked through the JSON
/// API) and is refused to the auditor by the API, leaving nothing changed.
async fn actions_and_pages(backend: Backend) {
    let allowlist = crate::support::plugin_component("allowlist-validator");
    // A target whose endpoint is down: a deployment there fails at once, and says so in the
    // audit log. It covers no issued name, so only an explicit deploy reaches it.
    let down = format!(
        "http://127.0.0.1:{}/certificate",
        crate::support::free_port()
    );
    let h = Harness::start_with(backend, move |c| {
        c.plugins = vec![
            acmegate::plugins::PluginConfig {
                name: "policy".into(),
                kind: "challenge-validator".into(),
                file: allowlist,
                config: toml::toml! { default = ["*.console.test"] },
                grants: toml::Table::new(),
            },
            crate::deployers::push_deployer(json!({"timeout_ms": 3000})),
        ];
        c.targets = vec![crate::deployers::target(
            "down",
            &["nothing.console.test"],
            1,
            json!({"url": down}),
        )];
    })
    .await;
    let cert = lego_http_run(&h, "shop.console.test", "lego run for the console").await;
    let issued = serial(&cert);
    let acme = crate::support::account(&h).await;
    let failed = caa_refused_order(&h, &acme, "caa.console.test").await;
    let admin = identity(&h, "ops-console", Role::Admin).await;
    let auditor = identity(&h, "inspector", Role::Auditor).await;
    let origin = format!(
        "Origin: https://localhost:{}",
        h.gw.admin_addr.unwrap().port()
    );
    let order = call(
        &h,
        Some(&admin),
        "GET",
        &format!("/api/v1/orders/{failed}"),
        None,
        200,
    )
    .await;
    let account = order["account_id"].as_str().unwrap().to_string();
    let challenge = order["authorizations"][0]["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "dns-01")
        .unwrap();
    assert_eq!(
        challenge["error"]["type"], "urn:ietf:params:acme:error:caa",
        "{order}"
    );
    let shop = call(
        &h,
        Some(&admin),
        "GET",
        &format!("/api/v1/certificates/{issued}"),
        None,
        200,
    )
    .await;
    let shop_order = shop["order_id"].as_str().unwrap().to_string();
    let shop_account = shop["account_id"].as_str().unwrap().to_string();
    call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/managed",
        Some(json!({"name": "web", "names": ["managed.console.test"]})),
        201,
    )
    .await;
    let first = api_until(&h, &admin, "/api/v1/managed/web", "managed issued", |m| {
        m["certificate_serial"].is_string()
    })
    .await["certificate_serial"]
        .as_str()
        .unwrap()
        .to_string();

    // Every new page answers both roles, with the frame's navigation to every section and no
    // markup from data.
    let pages = [
        "/console/managed".to_string(),
        "/console/accounts".to_string(),
        "/console/accounts?status=valid".to_string(),
        format!("/console/accounts/{account}"),
        "/console/orders".to_string(),
        format!("/console/orders?account={account}"),
        format!("/console/orders/{failed}"),
        format!("/console/orders/{shop_order}"),
        "/console/eab-keys".to_string(),
        "/console/plugins".to_string(),
        format!("/console/certificates/{issued}"),
    ];
    for who in [&admin, &auditor] {
        for path in &pages {
            let page = fetch(&h, Some(who), "GET", path, None, &[]).await;
            assert_eq!(page.status, 200, "GET {path}: {}", page.body);
            assert_eq!(page.header("content-security-policy"), Some(CSP), "{path}");
            assert!(
                !page.body.contains("<script") && !page.body.contains("style="),
                "{path}"
            );
            for section in [
                "certificates",
                "managed",
                "accounts",
                "orders",
                "eab-keys",
                "audit",
                "plugins",
            ] {
                assert!(
                    page.body
                        .contains(&format!("<a href=\"/console/{section}\"")),
                    "{path} links to {section}"
                );
            }
            // Every visible input and select is labelled (each sits in its own <label>).
            let body = &page.body;
            let fields = body.matches("<input").count() - body.matches("type=\"hidden\"").count()
                + body.matches("<select").count();
            assert_eq!(
                body.matches("<label>").count(),
                fields,
                "{path}: unlabelled input"
            );
        }
    }
    let get = |path: String| {
        let (h, admin) = (&h, &admin);
        async move { fetch(h, Some(admin), "GET", &path, None, &[]).await.body }
    };
    let accounts = get("/console/accounts".into()).await;
    assert!(
        accounts.contains("2 account(s), newest first, page 1 of 1")
            && accounts.contains(&account)
            && accounts.contains(&shop_account)
            && accounts.contains("mailto:ops@example.org"),
        "{accounts}"
    );
    // Each account with its number of orders, linked to them; the API lists the same count.
    assert!(
        accounts.contains(&format!("href=\"/console/orders?account={account}\">1</a>")),
        "{accounts}"
    );
    let listed = call(&h, Some(&admin), "GET", "/api/v1/accounts", None, 200).await;
    let counts: Vec<(&str, i64)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["orders"].as_i64().unwrap()))
        .collect();
    assert!(
        counts.contains(&(account.as_str(), 1)) && counts.contains(&(shop_account.as_str(), 1)),
        "{listed}"
    );
    let detail = get(format!("/console/accounts/{account}")).await;
    assert!(
        detail.contains(&format!("href=\"/console/orders/{failed}\""))
            && detail.contains("1 order(s), newest first")
            && detail.contains("Deactivate this account"),
        "{detail}"
    );
    let failed_page = get(format!("/console/orders/{failed}")).await;
    assert!(
        failed_page.contains("caa.console.test")
            && failed_page.contains("dns-01")
            && failed_page.contains("urn:ietf:params:acme:error:caa")
            && failed_page.contains("badge-bad\">invalid"),
        "{failed_page}"
    );
    let shop_page = get(format!("/console/orders/{shop_order}")).await;
    assert!(
        shop_page.contains(&format!("href=\"/console/certificates/{issued}\""))
            && shop_page.contains("http-01")
            && shop_page.contains("badge-ok\">valid"),
        "{shop_page}"
    );
    let orders = get("/console/orders".into()).await;
    assert!(
        orders.contains("2 order(s), newest first") && orders.contains("<code>unauthorized</code>"),
        "{orders}"
    );
    let managed = get("/console/managed".into()).await;
    assert!(
        managed.contains("<strong>web</strong>")
            && managed.contains("managed.console.test")
            && managed.contains("badge-ok\">active")
            && managed.contains(&format!("href=\"/console/certificates/{first}\""))
            // Each row's buttons name the row for a screen reader.
            && managed.contains("aria-label=\"Renew now managed certificate web\">Renew now</button>")
            && managed.contains("aria-label=\"Pause managed certificate web\">Pause</button>"),
        "{managed}"
    );

    // The auditor sees no action form, and each action, posted with the auditor's own token
    // from a same-origin page, is refused by the API: nothing changes.
    let actions = [
        format!("/console/certificates/{issued}/renew-now"),
        format!("/console/certificates/{issued}/deploy"),
        format!("/console/accounts/{account}/deactivate"),
        "/console/eab-keys".to_string(),
        "/console/eab-keys/eab-none/revoke".to_string(),
        "/console/plugins/policy/disable".to_string(),
        "/console/plugins/policy/enable".to_string(),
        "/console/managed/web/renew".to_string(),
        "/console/managed/web/pause".to_string(),
        "/console/managed/web/resume".to_string(),
    ];
    let seen = fetch(&h, Some(&auditor), "GET", "/console/managed", None, &[]).await;
    let token = seen.form_token();
    for path in &pages {
        let page = fetch(&h, Some(&auditor), "GET", path, None, &[]).await;
        assert!(
            !page.body.contains("method=\"post\""),
            "a form for the auditor on {path}"
        );
    }
    for action in &actions {
        let form = format!("form_token={token}&label=x&targets=down");
        let page = fetch(&h, Some(&auditor), "POST", action, Some(&form), &[&origin]).await;
        assert_eq!(page.status, 403, "auditor POST {action}: {}", page.body);
        assert!(
            page.body.contains("auditor role is read-only"),
            "{action}: {}",
            page.body
        );
    }
    let unchanged = call(
        &h,
        Some(&admin),
        "GET",
        &format!("/api/v1/certificates/{issued}"),
        None,
        200,
    )
    .await;
    assert!(unchanged["renewal"]["moved"].is_null(), "{unchanged}");
    let trail =
        format!("/api/v1/audit?resource=certificate/{issued}&action=certificate.deploy_failed");
    assert_eq!(
        call(&h, Some(&admin), "GET", &trail, None, 200).await["total"],
        0
    );
    let acct = format!("/api/v1/accounts/{account}");
    assert_eq!(
        call(&h, Some(&admin), "GET", &acct, None, 200).await["status"],
        "valid"
    );
    assert_eq!(
        call(&h, Some(&admin), "GET", "/api/v1/eab-keys", None, 200).await["total"],
        0
    );
    let plugins = call(&h, Some(&admin), "GET", "/api/v1/plugins", None, 200).await;
    assert_eq!(plugins["items"][0]["enabled"], true, "{plugins}");
    assert_eq!(
        call(&h, Some(&admin), "GET", "/api/v1/managed/web", None, 200).await["state"],
        "active"
    );

    // The admin acts; each form answers with a redirect to the page that shows the effect,
    // and the API confirms it.
    let token = fetch(&h, Some(&admin), "GET", "/console/managed", None, &[])
        .await
        .form_token();
    let post = |action: String, fields: &'static str| {
        let (h, admin, origin, token) = (&h, &admin, &origin, &token);
        async move {
            let form = format!("form_token={token}{fields}");
            fetch(h, Some(admin), "POST", &action, Some(&form), &[origin]).await
        }
    };
    let expect_redirect = |page: &Page, to: &str| {
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.header("location"), Some(to));
    };

    // Renew now: the certificate's ARI window is moved into the past, by an admin.
    let done = post(format!("/console/certificates/{issued}/renew-now"), "").await;
    expect_redirect(
        &done,
        &format!("/console/certificates/{issued}?done=renew-now"),
    );
    let moved = call(
        &h,
        Some(&admin),
        "GET",
        &format!("/api/v1/certificates/{issued}"),
        None,
        200,
    )
    .await;
    assert_eq!(moved["renewal"]["moved"], "admin", "{moved}");
    let page = get(format!("/console/certificates/{issued}?done=renew-now")).await;
    assert!(
        page.contains("(moved: admin)") && page.contains("renew at once"),
        "{page}"
    );

    // Deploy to the named target: one attempt, its failure in the audit log and the trail.
    let done = post(
        format!("/console/certificates/{issued}/deploy"),
        "&targets=down",
    )
    .await;
    expect_redirect(
        &done,
        &format!("/console/certificates/{issued}?done=deployed"),
    );
    assert_eq!(
        call(&h, Some(&admin), "GET", &trail, None, 200).await["total"],
        1
    );
    let page = get(format!("/console/certificates/{issued}?done=deployed")).await;
    assert!(page.contains("certificate.deploy_failed"), "{page}");
    let unknown = post(
        format!("/console/certificates/{issued}/deploy"),
        "&targets=nowhere",
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // The deploy form offers the targets that cover the certificate, as checkboxes: none for
    // this one, "down" for a certificate of the name it covers; ticking none is refused.
    let page = get(format!("/console/certificates/{issued}")).await;
    assert!(
        page.contains("No target covers this certificate") && !page.contains("name=\"targets\""),
        "{page}"
    );
    let covered = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/certificates/generate",
        Some(json!({"dns_names": ["nothing.console.test"]})),
        201,
    )
    .await;
    let covered = covered["serial"].as_str().expect("serial").to_string();
    let page = get(format!("/console/certificates/{covered}")).await;
    assert!(
        page.contains("<input type=\"checkbox\" name=\"targets\" value=\"down\" checked> down"),
        "{page}"
    );
    let none = post(format!("/console/certificates/{covered}/deploy"), "").await;
    assert_eq!(none.status, 400, "{}", none.body);

    // Deactivate the account that failed its order.
    let done = post(format!("/console/accounts/{account}/deactivate"), "").await;
    expect_redirect(
        &done,
        &format!("/console/accounts/{account}?done=deactivated"),
    );
    assert_eq!(
        call(&h, Some(&admin), "GET", &acct, None, 200).await["status"],
        "deactivated"
    );
    let page = get(format!("/console/accounts/{account}?done=deactivated")).await;
    assert!(
        page.contains("badge-warn\">deactivated") && !page.contains("Deactivate this account"),
        "{page}"
    );

    // An EAB key: its HMAC key on the answer page only, and it binds a new account.
    let created = post(
        "/console/eab-keys".into(),
        "&label=console+team&allowed_names=*.eab.console.test&profile=",
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let kid = code_after(&created.body, "Key id");
    let hmac = code_after(&created.body, "HMAC key (base64url)");
    assert!(kid.starts_with("eab-") && hmac.len() >= 43, "{kid} {hmac}");
    let listed = call(&h, Some(&admin), "GET", "/api/v1/eab-keys", None, 200).await;
    assert_eq!(listed["items"][0]["kid"], kid.as_str());
    assert_eq!(listed["items"][0]["label"], "console team");
    assert_eq!(
        listed["items"][0]["allowed_names"],
        json!(["*.eab.console.test"])
    );
    assert!(
        !listed.to_string().contains(&hmac),
        "the API never shows the HMAC again"
    );
    let list_page = get("/console/eab-keys".into()).await;
    assert!(
        list_page.contains(&kid)
            && !list_page.contains(&hmac)
            && list_page.contains(&format!(
                "aria-label=\"Revoke EAB key {kid}\">Revoke</button>"
            )),
        "{list_page}"
    );
    let mut bound = crate::support::client(&h, acmegate::client::KeyAlg::Es256).await;
    let secret = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&hmac)
            .unwrap()
    };
    bound
        .new_account(
            &["mailto:eab@example.org"],
            Some((kid.as_str(), secret.as_slice())),
        )
        .await
        .expect("the shown HMAC key binds an account");
    let done = post(format!("/console/eab-keys/{kid}/revoke"), "").await;
    expect_redirect(&done, "/console/eab-keys?done=revoked");
    let listed = call(&h, Some(&admin), "GET", "/api/v1/eab-keys", None, 200).await;
    assert_eq!(listed["items"][0]["state"], "revoked", "{listed}");
    assert!(listed["items"][0]["account_id"].is_string(), "{listed}");

    // Plugins: disabled, then enabled again; each button names its plugin.
    let page = get("/console/plugins".into()).await;
    assert!(
        page.contains("aria-label=\"Reload plugin policy\">Reload</button>")
            && page.contains("aria-label=\"Disable plugin policy\">Disable</button>"),
        "{page}"
    );
    let done = post("/console/plugins/policy/disable".into(), "").await;
    expect_redirect(&done, "/console/plugins?done=disabled");
    let plugins = call(&h, Some(&admin), "GET", "/api/v1/plugins", None, 200).await;
    assert_eq!(plugins["items"][0]["enabled"], false, "{plugins}");
    let page = get("/console/plugins?done=disabled".into()).await;
    assert!(
        page.contains("badge-warn\">disabled")
            && page.contains("action=\"/console/plugins/policy/enable\"")
            && page.contains("aria-label=\"Enable plugin policy\">Enable</button>"),
        "{page}"
    );
    let done = post("/console/plugins/policy/enable".into(), "").await;
    expect_redirect(&done, "/console/plugins?done=enabled");
    let plugins = call(&h, Some(&admin), "GET", "/api/v1/plugins", None, 200).await;
    assert_eq!(plugins["items"][0]["enabled"], true, "{plugins}");

    // Managed: renewed now (a new serial), paused, resumed.
    let done = post("/console/managed/web/renew".into(), "").await;
    expect_redirect(&done, "/console/managed?done=renew");
    api_until(&h, &admin, "/api/v1/managed/web", "managed renewed", |m| {
        m["certificate_serial"].is_string() && m["certificate_serial"] != first.as_str()
    })
    .await;
    let done = post("/console/managed/web/pause".into(), "").await;
    expect_redirect(&done, "/console/managed?done=pause");
    assert_eq!(
        call(&h, Some(&admin), "GET", "/api/v1/managed/web", None, 200).await["state"],
        "paused"
    );
    let page = get("/console/managed?done=pause".into()).await;
    assert!(
        page.contains("action=\"/console/managed/web/resume\"")
            && page.contains("aria-label=\"Resume managed certificate web\">Resume</button>"),
        "{page}"
    );
    let done = post("/console/managed/web/resume".into(), "").await;
    expect_redirect(&done, "/console/managed?done=resume");
    assert_eq!(
        call(&h, Some(&admin), "GET", "/api/v1/managed/web", None, 200).await["state"],
        "active"
    );

    // Every action of the console is audited as the admin who took it.
    let audit = call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/audit?per_page=200",
        None,
        200,
    )
    .await;
    let taken: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("admin:ops-console "))
        })
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "certificate.renew_now",
        "account.update",
        "eab.create",
        "eab.revoke",
        "plugin.disable",
        "plugin.enable",
        "managed.renew",
        "managed.state",
    ] {
        assert!(taken.contains(&action), "{action} missing from {taken:?}");
    }
    h.gw.shutdown().await;
}

crate::on_both_backends!(console_actions_and_pages_over_curl, actions_and_pages);

/// An order its client abandoned reads `invalid` once past its expiry (RFC 8555 §7.1.6) in
/// the API's list and detail, the console's orders page and the overview's failed orders,
/// though its stored status never moved: no client polled it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_orders_read_invalid_past_their_expiry() {
    let h = Harness::start(Backend::Sqlite).await;
    let acme = crate::support::account(&h).await;
    acme.new_order(
        &[acmegate::acme::Identifier::dns("gone.console.test")],
        None,
    )
    .await
    .expect("an order");
    let admin = identity(&h, "ops-console", Role::Admin).await;
    let listed = call(&h, Some(&admin), "GET", "/api/v1/orders", None, 200).await;
    assert_eq!(listed["items"][0]["status"], "pending", "{listed}");
    let id = listed["items"][0]["id"].as_str().unwrap().to_string();
    let failed = |summary: serde_json::Value| summary["failed_orders"]["7d"].as_i64().unwrap();
    let before = failed(call(&h, Some(&admin), "GET", "/api/v1/summary", None, 200).await);
    // Past the order's 24 hours: nobody polls it.
    h.clock().advance(25 * 3600);
    let listed = call(&h, Some(&admin), "GET", "/api/v1/orders", None, 200).await;
    assert_eq!(listed["items"][0]["status"], "invalid", "{listed}");
    let order = call(
        &h,
        Some(&admin),
        "GET",
        &format!("/api/v1/orders/{id}"),
        None,
        200,
    )
    .await;
    assert_eq!(order["status"], "invalid", "{order}");
    let summary = call(&h, Some(&admin), "GET", "/api/v1/summary", None, 200).await;
    assert_eq!(failed(summary), before + 1);
    let page = fetch(&h, Some(&admin), "GET", "/console/orders", None, &[]).await;
    assert!(
        page.body.contains("badge-bad\">invalid") && !page.body.contains("badge-warn\">pending"),
        "{}",
        page.body
    );
    h.gw.shutdown().await;
}

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
/// console, and a cross-site form post is refused; the accounts, orders, managed and EAB pages
/// are reached through the navigation, an order page shows its challenges with a visible
/// keyboard focus, and the orders pages fit a 390 px phone. Screenshots of each page land in
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
    // An EAB key, revoked in the browser through the button its row names.
    let eab = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/eab-keys",
        Some(json!({"label": "browser"})),
        201,
    )
    .await;
    let kid = eab["kid"].as_str().expect("kid").to_string();
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
        .env("KEEP", keep)
        .env("KID", &kid);
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
    assert_eq!(seen["eab_revoked"], kid.as_str());
    let keys = call(&h, Some(&admin), "GET", "/api/v1/eab-keys", None, 200).await;
    assert_eq!(keys["items"][0]["state"], "revoked", "{keys}");
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
        "accounts",
        "orders",
        "order",
        "orders-phone",
        "order-phone",
        "managed",
        "eab-keys",
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
    // Each listing renders one page of rows, never the table: (path, rows expected).
    for (path, rows) in [
        ("/console/", None),
        ("/console/certificates", Some(50)),
        ("/console/certificates?page=150", Some(50)),
        ("/console/certificates?page=201", Some(1)),
        ("/console/certificates?name=host9999.bulk", Some(1)),
        ("/console/audit", Some(50)),
        ("/console/audit?page=100", Some(50)),
        ("/console/managed", None),
        ("/console/accounts", None),
        ("/console/orders", None),
        ("/console/eab-keys", None),
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
        // Body rows of the page's listing table: every `<tr>` but the header row.
        let listed = page
            .body
            .split("<tbody>")
            .nth(1)
            .map_or(0, |body| body.matches("<tr>").count());
        match rows {
            Some(rows) => assert_eq!(listed, rows, "{path}"),
            None => assert!(listed <= 50, "{path} renders {listed} rows"),
        }
    }
    let list = fetch(&h, Some(&admin), "GET", "/console/certificates", None, &[]).await;
    assert!(
        list.body.contains("10001 certificate(s), page 1 of 201"),
        "{}",
        &list.body[..2000.min(list.body.len())]
    );
    h.gw.shutdown().await;
}
