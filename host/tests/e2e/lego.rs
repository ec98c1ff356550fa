//! lego (Debian's package) against the gateway: http-01, tls-alpn-01 and dns-01 (exec
//! provider), IP identifiers, renewal, revocation, and authorization deactivation.

use tokio::process::Command;

use crate::on_both_backends;
use crate::support::{
    run, run_failing, sans, serial, stored_status, verify_chain, Backend, Harness,
};

pub(crate) fn lego(h: &Harness) -> Command {
    let mut cmd = Command::new("lego");
    cmd.env("LEGO_CA_CERTIFICATES", &h.root_pem)
        .arg("--server")
        .arg(h.directory())
        .args(["--accept-tos", "--email", "ops@example.org", "--path"])
        .arg(h.path("lego"));
    cmd
}

/// The account id lego registered, read from its account file.
fn lego_account_id(h: &Harness) -> String {
    fn find(dir: &std::path::Path) -> Option<std::path::PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                if let Some(f) = find(&p) {
                    return Some(f);
                }
            } else if p.file_name().is_some_and(|n| n == "account.json") {
                return Some(p);
            }
        }
        None
    }
    let file = find(&h.path("lego/accounts")).expect("lego wrote account.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let uri = json["registration"]["uri"]
        .as_str()
        .expect("registration uri")
        .to_string();
    uri.rsplit('/').next().unwrap().to_string()
}

pub(crate) fn lego_cert(h: &Harness, name: &str) -> std::path::PathBuf {
    h.path(&format!("lego/certificates/{}.crt", name.replace('*', "_")))
}

/// `lego run` for `name` with its http-01 server on the harness's validation port; returns
/// the certificate file.
pub(crate) async fn lego_http_run(h: &Harness, name: &str, what: &str) -> std::path::PathBuf {
    let http = format!("127.0.0.1:{}", h.http_port);
    run(
        lego(h).args(["--http", "--http.port", &http, "-d", name, "run"]),
        what,
    )
    .await;
    lego_cert(h, name)
}

/// `lego renew` of `name` over http-01, forced whatever the certificate's age.
pub(crate) async fn lego_http_renew(h: &Harness, name: &str, what: &str) {
    let http = format!("127.0.0.1:{}", h.http_port);
    run(
        lego(h).args([
            "--http",
            "--http.port",
            &http,
            "-d",
            name,
            "renew",
            "--days",
            "10000",
            "--no-random-sleep",
        ]),
        what,
    )
    .await;
}

/// lego issues `name` over http-01, renews it (a new serial) and revokes the renewal; each
/// step is checked in the gateway's store.
pub(crate) async fn lego_http_cycle(h: &Harness, name: &str) {
    let cert = lego_http_run(h, name, "lego run (http-01)").await;
    verify_chain(&h.root_pem, &cert);
    let first = serial(&cert);
    assert_eq!(stored_status(h, &first).await, "valid");
    lego_http_renew(h, name, "lego renew").await;
    let second = serial(&cert);
    assert_ne!(first, second);
    run(
        lego(h).args(["-d", name, "revoke", "--reason", "4"]),
        "lego revoke",
    )
    .await;
    assert_eq!(stored_status(h, &second).await, "revoked");
}

async fn http01_issue_renew_revoke(backend: Backend) {
    let h = Harness::start(backend).await;
    lego_http_cycle(&h, "web.lego.test").await;
    h.gw.shutdown().await;
}
on_both_backends!(http01_issue_renew_revoke, http01_issue_renew_revoke);

async fn tls_alpn01(backend: Backend) {
    let h = Harness::start(backend).await;
    let tls = format!("127.0.0.1:{}", h.tls_port);
    run(
        lego(&h).args(["--tls", "--tls.port", &tls, "-d", "alpn.lego.test", "run"]),
        "lego run (tls-alpn-01)",
    )
    .await;
    verify_chain(&h.root_pem, &lego_cert(&h, "alpn.lego.test"));
    // lego 4.9 sends an IP address as a "dns" identifier; RFC 8738 wants "ip", and the
    // refusal must say so. (IP issuance itself is proven with the protocol client.)
    let http = format!("127.0.0.1:{}", h.http_port);
    let out = run_failing(
        lego(&h).args(["--http", "--http.port", &http, "-d", "127.0.0.1", "run"]),
        "lego run (IP as dns)",
    )
    .await;
    assert!(
        out.contains("urn:ietf:params:acme:error:malformed") && out.contains("RFC 8738"),
        "{out}"
    );
    h.gw.shutdown().await;
}
on_both_backends!(tls_alpn01, tls_alpn01);

async fn dns01_exec_provider_with_deactivation(backend: Backend) {
    let h = Harness::start(backend).await;
    let txt = h.txt_dir.display().to_string();
    // lego's exec provider calls: present|cleanup <fqdn.> <value>
    let hook = h.script(
        "lego-dns.sh",
        &format!("name=$(echo \"$2\" | sed 's/\\.$//')\nif [ \"$1\" = present ]; then echo \"$3\" >> {txt}/$name; else rm -f {txt}/$name; fi"),
    );
    let resolver = h.dns.addr().to_string();
    run(
        lego(&h)
            .env("EXEC_PATH", &hook)
            .env("EXEC_POLLING_INTERVAL", "1")
            .env("EXEC_PROPAGATION_TIMEOUT", "20")
            // Both names share one _acme-challenge record; lego waits this long between them.
            .env("EXEC_SEQUENCE_INTERVAL", "1")
            .args([
                "--dns",
                "exec",
                "--dns.resolvers",
                &resolver,
                "--dns.disable-cp",
            ])
            .args([
                "-d",
                "*.wild.lego.test",
                "-d",
                "wild.lego.test",
                "run",
                "--always-deactivate-authorizations",
                "true",
            ]),
        "lego run (dns-01 exec)",
    )
    .await;
    // --always-deactivate-authorizations: lego deactivated both authorizations (§7.5.2).
    let account_id = lego_account_id(&h);
    let store = h.gw.gateway.store.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        let orders = store.orders_for_account(&account_id, None, 10).unwrap();
        assert_eq!(orders.len(), 1);
        store
            .authorizations_for_order(&orders[0].id)
            .unwrap()
            .into_iter()
            .map(|a| a.status)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(statuses, ["deactivated", "deactivated"]);
    let cert = lego_cert(&h, "*.wild.lego.test");
    let names = sans(&cert);
    assert!(names.contains("DNS:*.wild.lego.test"), "{names}");
    verify_chain(&h.root_pem, &cert);
    h.gw.shutdown().await;
}
on_both_backends!(
    dns01_exec_provider_with_deactivation,
    dns01_exec_provider_with_deactivation
);

/// An issuer slower than finalize's wait: finalize answers `processing` and lego polls the
/// order until the background issuance makes it valid.
async fn http01_through_processing_finalize(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.issuance.inline_wait_ms = 0).await;
    let name = "slow.lego.test";
    let cert = lego_http_run(&h, name, "lego run (processing finalize)").await;
    verify_chain(&h.root_pem, &cert);
    assert_eq!(stored_status(&h, &serial(&cert)).await, "valid");
}
on_both_backends!(
    http01_through_processing_finalize,
    http01_through_processing_finalize
);
