//! certbot (Debian's package) against the gateway: http-01 standalone and dns-01 with manual
//! hooks, renewal, and revocation by account key.

use tokio::process::Command;

use crate::on_both_backends;
use crate::support::{run, sans, serial, stored_status, verify_chain, Backend, Harness};

pub(crate) fn certbot(h: &Harness) -> Command {
    certbot_from(h, "certbot".as_ref())
}

/// `program` (a certbot) with the harness's server, trust and directories.
pub(crate) fn certbot_from(h: &Harness, program: &std::path::Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("REQUESTS_CA_BUNDLE", &h.root_pem)
        .arg("--non-interactive")
        .arg("--server")
        .arg(h.directory())
        .arg("--config-dir")
        .arg(h.path("certbot/etc"))
        .arg("--work-dir")
        .arg(h.path("certbot/work"))
        .arg("--logs-dir")
        .arg(h.path("certbot/logs"));
    cmd
}

/// `certbot certonly --standalone` for `name` (http-01 on the harness's validation port, an
/// ECDSA key); returns its `live/<name>` directory.
pub(crate) async fn certonly(h: &Harness, name: &str, what: &str) -> std::path::PathBuf {
    certonly_with(h, certbot(h), name, what).await
}

/// [`certonly`] run by `certbot` (a command from [`certbot_from`]).
pub(crate) async fn certonly_with(
    h: &Harness,
    mut certbot: Command,
    name: &str,
    what: &str,
) -> std::path::PathBuf {
    let port = h.http_port.to_string();
    run(
        certbot.args([
            "certonly",
            "--standalone",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &port,
            "--key-type",
            "ecdsa",
            "-d",
            name,
        ]),
        what,
    )
    .await;
    h.path(&format!("certbot/etc/live/{name}"))
}

/// `certbot revoke` of the certificate in `live` (a `live/<name>` directory) for `reason` (one
/// of certbot's names, e.g. `superseded`), keeping its files.
pub(crate) async fn revoke(h: &Harness, live: &std::path::Path, reason: &str, what: &str) {
    run(
        certbot(h)
            .args([
                "revoke",
                "--no-delete-after-revoke",
                "--reason",
                reason,
                "--cert-path",
            ])
            .arg(live.join("cert.pem")),
        what,
    )
    .await;
}

/// certbot issues `name` over http-01, renews it (a new serial) and revokes the renewal; each
/// step is checked in the gateway's store and the chains with OpenSSL.
pub(crate) async fn certbot_http_cycle(h: &Harness, name: &str) {
    let live = certonly(h, name, "certbot certonly (http-01)").await;
    verify_chain(&h.root_pem, &live.join("fullchain.pem"));
    assert!(sans(&live.join("cert.pem")).contains(&format!("DNS:{name}")));
    let first = serial(&live.join("cert.pem"));
    assert_eq!(stored_status(h, &first).await, "valid");

    run(
        certbot(h).args(["renew", "--force-renewal", "--no-random-sleep-on-renew"]),
        "certbot renew",
    )
    .await;
    let second = serial(&live.join("cert.pem"));
    assert_ne!(first, second, "renewal must issue a new certificate");
    verify_chain(&h.root_pem, &live.join("fullchain.pem"));

    revoke(h, &live, "superseded", "certbot revoke").await;
    assert_eq!(stored_status(h, &second).await, "revoked");
    assert_eq!(stored_status(h, &first).await, "valid");
}

async fn http01_issue_renew_revoke(backend: Backend) {
    let h = Harness::start(backend).await;
    certbot_http_cycle(&h, "web.certbot.test").await;
    h.gw.shutdown().await;
}
on_both_backends!(http01_issue_renew_revoke, http01_issue_renew_revoke);

async fn dns01_with_manual_hooks(backend: Backend) {
    let h = Harness::start(backend).await;
    let txt = h.txt_dir.display().to_string();
    let auth = h.script(
        "certbot-auth.sh",
        &format!("echo \"$CERTBOT_VALIDATION\" >> {txt}/_acme-challenge.$CERTBOT_DOMAIN"),
    );
    let cleanup = h.script(
        "certbot-cleanup.sh",
        &format!("rm -f {txt}/_acme-challenge.$CERTBOT_DOMAIN"),
    );
    run(
        certbot(&h)
            .args([
                "certonly",
                "--manual",
                "--preferred-challenges",
                "dns",
                "--agree-tos",
                "--register-unsafely-without-email",
            ])
            .arg("--manual-auth-hook")
            .arg(&auth)
            .arg("--manual-cleanup-hook")
            .arg(&cleanup)
            .args(["-d", "dns.certbot.test", "-d", "*.dns.certbot.test"]),
        "certbot certonly (dns-01, wildcard)",
    )
    .await;
    let cert = h.path("certbot/etc/live/dns.certbot.test/cert.pem");
    let names = sans(&cert);
    assert!(
        names.contains("DNS:dns.certbot.test") && names.contains("DNS:*.dns.certbot.test"),
        "{names}"
    );
    verify_chain(
        &h.root_pem,
        &h.path("certbot/etc/live/dns.certbot.test/fullchain.pem"),
    );
    h.gw.shutdown().await;
}
on_both_backends!(dns01_with_manual_hooks, dns01_with_manual_hooks);
