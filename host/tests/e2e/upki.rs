//! acmegate in front of a uPKI CA (the test peer of `upki_peer.rs`, real ZeroMQ) through the
//! `upki-issuer` plugin: lego and certbot get certificates, the CN quirk and the newest-only
//! revocation are handled as docs/upki.md says, and a CA that hangs leaves orders
//! `processing` until they complete after a restart or fail with a clear problem.

use std::time::Duration;

use acmegate::acme::Identifier;
use acmegate::ca::Profile;
use acmegate::config::Config;
use acmegate::issuance::RetryPolicy;
use acmegate::plugins::PluginConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::json;

use crate::certbot::certonly;
use crate::lego::{lego, lego_http_run};
use crate::support::*;
use crate::upki_peer::UpkiPeer;

/// The default profile issued by the uPKI CA behind `peer`.
fn behind(c: &mut Config, peer: &UpkiPeer) {
    let config = json!({"endpoint": peer.main, "timeout_ms": 1000, "profiles": {"default": "server", "misconfigured": "nope"}});
    c.plugins = vec![PluginConfig {
        name: "upki".into(),
        kind: "issuer-connector".into(),
        file: plugin_component("upki-issuer"),
        config: toml::Value::try_from(config)
            .expect("toml")
            .as_table()
            .cloned()
            .expect("table"),
        grants: toml::Table::from_iter([(
            "zmq_endpoints".to_string(),
            toml::Value::Array(vec![toml::Value::String(peer.main.clone())]),
        )]),
    }];
    c.profiles = vec![
        Profile {
            issuer: "upki".into(),
            ..Profile::default_server()
        },
        // Mapped to a uPKI profile the CA does not have.
        Profile {
            name: "misconfigured".into(),
            issuer: "upki".into(),
            ..Profile::default_server()
        },
    ];
    c.issuance.retry = RetryPolicy {
        max_attempts: 3,
        give_up_after_seconds: 60,
        base_delay_seconds: 1,
        max_delay_seconds: 1,
    };
}

/// The peer's CA certificate as the root clients trust for what it issued.
fn ca_file(h: &Harness, peer: &UpkiPeer) -> std::path::PathBuf {
    let path = h.path("upki-ca.pem");
    std::fs::write(&path, peer.ca_pem()).unwrap();
    path
}

/// lego issues, renews and revokes through the uPKI CA; clients get leaf + CA certificate.
async fn lego_through_upki(backend: Backend) {
    let peer = UpkiPeer::start("seed");
    let h = Harness::start_with(backend, |c| behind(c, &peer)).await;
    let name = "web.upki.test";
    let http = format!("127.0.0.1:{}", h.http_port);
    let cert = lego_http_run(&h, name, "lego run via uPKI").await;
    verify_chain(&ca_file(&h, &peer), &cert);
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
        "lego renew via uPKI",
    )
    .await;
    let second = serial(&cert);
    assert_ne!(first, second);
    run(
        lego(&h).args(["-d", name, "revoke", "--reason", "4"]),
        "lego revoke via uPKI",
    )
    .await;
    assert_eq!(stored_status(&h, &second).await, "revoked");
    let issued = peer.issued();
    assert_eq!(issued.len(), 2);
    assert!(issued.iter().all(|c| c.cn == name));
    assert_eq!(issued[1].revoked, Some("superseded"));
    h.gw.shutdown().await;
}
crate::on_both_backends!(lego_through_upki, lego_through_upki);

/// certbot gets a certificate through the uPKI CA.
async fn certbot_through_upki(backend: Backend) {
    let peer = UpkiPeer::start("seed");
    let h = Harness::start_with(backend, |c| behind(c, &peer)).await;
    let name = "bot.upki.test";
    let live = certonly(&h, name, "certbot certonly via uPKI").await;
    verify_chain(&ca_file(&h, &peer), &live.join("fullchain.pem"));
    assert!(sans(&live.join("cert.pem")).contains(&format!("DNS:{name}")));
    assert_eq!(peer.issued()[0].cn, name);
    h.gw.shutdown().await;
}
crate::on_both_backends!(certbot_through_upki, certbot_through_upki);

/// The gateway's own client sends CSRs without a subject: the connector gives them the CN the
/// CA needs. Of two certificates for one name, the older cannot be revoked (the CA would hit
/// the newest): refused with the reason; the newest is revoked at the CA.
async fn cn_quirk_and_newest_only_revocation(backend: Backend) {
    let peer = UpkiPeer::start("seed");
    let h = Harness::start_with(backend, |c| {
        behind(c, &peer);
        c.acme.auto_approve = true;
    })
    .await;
    let c = account(&h).await;
    let ids = [Identifier::dns("twice.upki.test")];
    let (_, old_chain) = c.issue(&ids, "http-01", None).await.expect("first");
    let (_, new_chain) = c.issue(&ids, "http-01", None).await.expect("second");
    assert_eq!(peer.issued().len(), 2);
    assert!(peer.issued().iter().all(|i| i.cn == "twice.upki.test"));
    // A CA error reaches the client as a problem with the CA's code and message.
    let refused = c
        .issue(&ids, "http-01", Some("misconfigured"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("serverInternal") && refused.contains("[500] Profile not found"),
        "{refused}"
    );
    let der = |pem: &str| {
        openssl::x509::X509::from_pem(pem.as_bytes())
            .unwrap()
            .to_der()
            .unwrap()
    };
    let revoke = c.url("revokeCert").unwrap();
    let r = c
        .post(
            &revoke,
            Some(&json!({"certificate": B64.encode(der(&old_chain))})),
        )
        .await
        .unwrap();
    let problem = r.problem().expect("older certificate refused");
    assert_eq!(problem.kind, acmegate::acme::ProblemType::Unauthorized);
    assert!(problem.detail.contains("newest"), "{}", problem.detail);
    assert!(peer.issued().iter().all(|i| i.revoked.is_none()));
    let r = c
        .post(
            &revoke,
            Some(&json!({"certificate": B64.encode(der(&new_chain)), "reason": 1})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.problem());
    assert_eq!(peer.issued()[1].revoked, Some("keyCompromise"));

    // The CA's own CRL, served by the gateway for this issuer, lists the revoked serial.
    let crl = c
        .get(&format!("{}/ca/issuers/upki/crl.der", h.gw.base_url))
        .await
        .unwrap();
    assert_eq!(crl.status, 200);
    let crl = openssl::x509::X509Crl::from_der(&crl.body).expect("a DER CRL");
    let listed: Vec<Vec<u8>> = crl
        .get_revoked()
        .into_iter()
        .flatten()
        .map(|r| r.serial_number().to_bn().unwrap().to_vec())
        .collect();
    assert_eq!(listed, vec![peer.issued()[1].serial.clone()]);
    let ca = c
        .get(&format!("{}/ca/issuers/upki/ca.pem", h.gw.base_url))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ca.body), peer.ca_pem());
    let missing = c
        .get(&format!("{}/ca/issuers/nope/crl.der", h.gw.base_url))
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    cn_quirk_and_newest_only_revocation,
    cn_quirk_and_newest_only_revocation
);

/// A CA that hangs: the order stays `processing` while the gateway retries, and fails with a
/// problem naming the issuer once the retries are spent. Then, with the CA hanging across a
/// gateway restart, the order completes once the CA answers again.
async fn ca_down_then_restart(backend: Backend) {
    let peer = UpkiPeer::start("seed");
    let h = Harness::start_with(backend, |c| {
        behind(c, &peer);
        c.acme.auto_approve = true;
    })
    .await;
    let c = account(&h).await;
    peer.set_silent(true);
    let store = h.gw.gateway.store.clone();
    let order_of = |name: &str| {
        let ids = [Identifier::dns(name)];
        let c = &c;
        async move {
            let reply = c.new_order(&ids, None).await.unwrap().ok().unwrap();
            let url = reply.location().unwrap();
            let order = reply.json().unwrap();
            c.authorize(&order, "http-01").await.unwrap();
            let (csr, _) = acmegate::client::csr_p256(&ids).unwrap();
            let fin = c
                .post(
                    order["finalize"].as_str().unwrap(),
                    Some(&json!({"csr": B64.encode(csr)})),
                )
                .await
                .unwrap();
            assert_eq!(fin.json().unwrap()["status"], "processing");
            url
        }
    };
    let url = order_of("down.upki.test").await;
    let failed = c.poll(&url, Duration::from_secs(20)).await.unwrap();
    assert_eq!(failed["status"], "invalid", "{failed}");
    let detail = failed["error"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("upki"), "{detail}");

    let url = order_of("later.upki.test").await;
    let id = url.rsplit('/').next().unwrap().to_string();
    let mut config = h.gw.gateway.config.clone();
    config.issuance.retry.max_attempts = 100;
    let h = h
        .restart(config, || {
            assert_eq!(store.order(&id).unwrap().status, "processing");
            peer.set_silent(false);
        })
        .await;
    let order = wait_settled(&store, &id).await;
    assert_eq!(order.status, "valid", "{order:?}");
    assert_eq!(store.certificates_of_order(&id).unwrap().len(), 1);
    h.gw.shutdown().await;
}
crate::on_both_backends!(ca_down_then_restart, ca_down_then_restart);

/// First use with a registration configured: the connector registers on the CA's
/// registration port with the seed, keeps the identity in its state (sealed in the
/// gateway's database), and reuses it after a restart without registering again. A wrong
/// seed fails issuance with a problem that does not contain the seed.
async fn registers_once_and_keeps_its_identity(backend: Backend) {
    let peer = UpkiPeer::start("the-seed-1234");
    let register = |c: &mut Config, seed: &str| {
        behind(c, &peer);
        c.acme.auto_approve = true;
        let entry = &mut c.plugins[0];
        entry.config.insert(
            "registration".into(),
            toml::Value::try_from(json!({"cn": "acmegate-ra.test"})).unwrap(),
        );
        let endpoints = entry.grants["zmq_endpoints"].as_array().unwrap().clone();
        let mut all = endpoints;
        all.push(toml::Value::String(peer.registration.clone()));
        entry
            .grants
            .insert("zmq_endpoints".into(), toml::Value::Array(all));
        entry
            .grants
            .insert("state".into(), toml::Value::Boolean(true));
        entry.grants.insert(
            "secrets".into(),
            toml::Value::try_from(json!({"registration_seed": seed})).unwrap(),
        );
    };
    // Wrong seed first: refused, nothing kept, the seed in no problem detail.
    let h = Harness::start_with(backend, |c| {
        register(c, "wrong-seed-5678");
        c.issuance.retry.max_attempts = 1;
    })
    .await;
    let c = account(&h).await;
    let err = c
        .issue(&[Identifier::dns("a.upki.test")], "http-01", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("registration") && err.contains("Invalid registration seed"),
        "{err}"
    );
    assert!(!err.contains("wrong-seed-5678"), "the seed leaked: {err}");
    let store = h.gw.gateway.store.clone();
    assert_eq!(
        store
            .plugin_state_get("upki", "identity/certificate")
            .unwrap(),
        None
    );
    let mut config = h.gw.gateway.config.clone();
    // The right seed: registered once, identity sealed in the store.
    register(&mut config, "the-seed-1234");
    config.issuance.retry.max_attempts = 3;
    let h = h.restart(config.clone(), || {}).await;
    let c = account(&h).await;
    c.issue(&[Identifier::dns("b.upki.test")], "http-01", None)
        .await
        .expect("issued after registering");
    assert_eq!(
        peer.registrations(),
        (2, vec!["acmegate-ra.test".to_string()])
    );
    let sealed = store
        .plugin_state_get("upki", "identity/private_key")
        .unwrap()
        .expect("identity kept");
    assert!(!sealed.contains("PRIVATE KEY"), "the key is sealed at rest");

    // Restart: the identity is reused, no new registration.
    let h = h.restart(config, || {}).await;
    let c = account(&h).await;
    c.issue(&[Identifier::dns("c.upki.test")], "http-01", None)
        .await
        .expect("issued after the restart");
    assert_eq!(peer.registrations().0, 2, "no second registration");
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    registers_once_and_keeps_its_identity,
    registers_once_and_keeps_its_identity
);
