//! lego (Debian's package) against the gateway: http-01, tls-alpn-01 and dns-01 (exec
//! provider), IP identifiers, renewal, revocation, and authorization deactivation.

use tokio::process::Command;

use crate::on_both_backends;
use crate::support::{run, sans, serial, stored_status, verify_chain, Backend, Harness};

fn lego(h: &Harness) -> Command {
    let mut cmd = Command::new("lego");
    cmd.env("LEGO_CA_CERTIFICATES", &h.root_pem)
        .arg("--server")
        .arg(h.directory())
        .args(["--accept-tos", "--email", "ops@example.org", "--path"])
        .arg(h.path("lego"));
    cmd
}

fn lego_cert(h: &Harness, name: &str) -> std::path::PathBuf {
    h.path(&format!("lego/certificates/{}.crt", name.replace('*', "_")))
}

async fn http01_issue_renew_revoke(backend: Backend) {
    let h = Harness::start(backend).await;
    let name = "web.lego.test";
    let http = format!("127.0.0.1:{}", h.http_port);
    run(
        lego(&h).args(["--http", "--http.port", &http, "-d", name, "run"]),
        "lego run (http-01)",
    )
    .await;
    let cert = lego_cert(&h, name);
    verify_chain(&h.root_pem, &cert);
    let first = serial(&cert);
    assert_eq!(stored_status(&h, &first).await, "valid");
    run(
        lego(&h).args([
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
        "lego renew",
    )
    .await;
    let second = serial(&cert);
    assert_ne!(first, second);
    run(
        lego(&h).args(["-d", name, "revoke", "--reason", "4"]),
        "lego revoke",
    )
    .await;
    assert_eq!(stored_status(&h, &second).await, "revoked");
    h.gw.shutdown().await;
}
on_both_backends!(http01_issue_renew_revoke, http01_issue_renew_revoke);

async fn tls_alpn01_and_ip_identifier(backend: Backend) {
    let h = Harness::start(backend).await;
    let tls = format!("127.0.0.1:{}", h.tls_port);
    run(
        lego(&h).args(["--tls", "--tls.port", &tls, "-d", "alpn.lego.test", "run"]),
        "lego run (tls-alpn-01)",
    )
    .await;
    verify_chain(&h.root_pem, &lego_cert(&h, "alpn.lego.test"));
    // RFC 8738: an IP identifier, proven with http-01 on the address itself.
    let http = format!("127.0.0.1:{}", h.http_port);
    run(
        lego(&h).args(["--http", "--http.port", &http, "-d", "127.0.0.1", "run"]),
        "lego run (IP identifier)",
    )
    .await;
    let names = sans(&lego_cert(&h, "127.0.0.1"));
    assert!(names.contains("IP Address:127.0.0.1"), "{names}");
    h.gw.shutdown().await;
}
on_both_backends!(tls_alpn01_and_ip_identifier, tls_alpn01_and_ip_identifier);

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
