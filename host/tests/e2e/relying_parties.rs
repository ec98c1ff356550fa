//! Relying parties: the CRL and CA certificate URLs in every certificate point at a
//! plain-HTTP listener (`server.http_listen`, RFC 5280 relying parties fetch without TLS)
//! that OpenSSL's own CRL downloader reaches, and that serves nothing else.

use acmegate::acme::Identifier;
use acmegate::admin::Role;
use serde_json::json;

use crate::admin_api::{call, identity};
use crate::support::*;

/// `openssl verify -crl_download` on the certificate's chain, as a relying party would run it:
/// its verdict line.
async fn openssl_verdict(h: &Harness, leaf: &std::path::Path) -> String {
    let (root, intermediate) = (h.path("root.pem"), h.path("intermediate.pem"));
    std::fs::write(&root, h.gw.gateway.ca.root_pem()).unwrap();
    std::fs::write(&intermediate, h.gw.gateway.ca.intermediate_pem()).unwrap();
    let out = output_within(
        tokio::process::Command::new("openssl")
            .args(["verify", "-crl_check", "-crl_download", "-CAfile"])
            .arg(&root)
            .arg("-untrusted")
            .arg(&intermediate)
            .arg(leaf),
        "openssl verify",
    )
    .await;
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn curl_plain(url: &str) -> (String, Vec<u8>) {
    let out = run(
        tokio::process::Command::new("curl").args(["-sS", "-w", "\n%{http_code}", url]),
        "curl over plain HTTP",
    )
    .await;
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&body[split + 1..]).to_string();
    body.truncate(split);
    (status, body)
}

async fn openssl_fetches_the_crl_a_certificate_names(backend: Backend) {
    let h = Harness::start_with(backend, |c| {
        c.acme.auto_approve = true;
        c.server.http_listen = "127.0.0.1:0".into();
    })
    .await;
    let port = h.gw.pki_addr.expect("the plain-HTTP listener").port();
    let pki = format!("http://localhost:{port}");
    assert_eq!(h.gw.pki_url, pki);

    let acme = account(&h).await;
    let (_, chain) = acme
        .issue(&[Identifier::dns("rp.example")], "http-01", None)
        .await
        .unwrap();
    let leaf = h.path("leaf.pem");
    std::fs::write(&leaf, &chain).unwrap();
    let text = run(
        tokio::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&leaf),
        "openssl x509",
    )
    .await;
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains(&format!("URI:{pki}/ca/crl.der")), "{text}");
    assert!(
        text.contains(&format!("CA Issuers - URI:{pki}/ca/intermediate.der")),
        "{text}"
    );

    // OpenSSL follows the certificate's CRL URL itself (it fetches over plain HTTP only).
    let verdict = openssl_verdict(&h, &leaf).await;
    assert!(verdict.contains(": OK"), "{verdict}");

    // The AIA URL serves the issuing CA certificate, DER.
    let (status, body) = curl_plain(&format!("{pki}/ca/intermediate.der")).await;
    assert_eq!(status, "200");
    assert_eq!(body, h.gw.gateway.ca.intermediate_der());
    let (status, body) = curl_plain(&format!("{pki}/ca/root.pem")).await;
    assert_eq!(status, "200");
    assert_eq!(body, h.gw.gateway.ca.root_pem().as_bytes());

    // Revoked: the CRL behind the same URL lists it at once, and OpenSSL refuses the chain.
    let admin = identity(&h, "ops", Role::Admin).await;
    call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/certificates/{}/revoke", serial(&leaf)),
        Some(json!({"reason": 1})),
        200,
    )
    .await;
    let verdict = openssl_verdict(&h, &leaf).await;
    assert!(verdict.contains("certificate revoked"), "{verdict}");

    // Nothing but the PKI files: no ACME, no metrics, no writes over plain HTTP.
    for path in ["/acme/directory", "/metrics", "/ready", "/health"] {
        let (status, body) = curl_plain(&format!("{pki}{path}")).await;
        assert_eq!(status, "404", "{path}");
        assert!(
            String::from_utf8_lossy(&body).contains("only the CA certificates and CRLs"),
            "{path}"
        );
    }
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    openssl_fetches_the_crl_a_certificate_names,
    openssl_fetches_the_crl_a_certificate_names
);
