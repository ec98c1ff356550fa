//! acmegate in front of an upstream ACME CA (Debian's Pebble) through the
//! `acme-upstream-issuer` plugin: lego and certbot validate against acmegate, which obtains
//! the certificate from Pebble with its own account and forwards revocations.

use acmegate::authority::issuance::RetryPolicy;
use acmegate::bench::pebble::Pebble;
use acmegate::ca::Profile;
use acmegate::plugins::PluginConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use crate::certbot::certonly;
use crate::lego::{lego, lego_http_run};
use crate::support::*;

/// The upstream requires External Account Binding; the connector binds its account with the
/// granted kid and HMAC key (Pebble refuses accounts without a binding).
async fn clients_through_upstream_acme(backend: Backend) {
    let eab_key = B64.encode([42u8; 32]);
    let pebble = Pebble::start_with(false, Some(("acmegate-ra", &eab_key)))
        .await
        .expect("pebble starts");
    let files = tempfile::tempdir().unwrap();
    let listener_root = files.path().join("pebble-listener-root.pem");
    std::fs::write(&listener_root, &pebble.root_pem).unwrap();
    let issuing_root = files.path().join("pebble-issuing-root.pem");
    std::fs::write(&issuing_root, &pebble.issuing_root_pem).unwrap();
    let account_key = {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::ec::EcKey::generate(&group).unwrap();
        B64.encode(key.private_key().to_vec_padded(32).unwrap())
    };
    let h = Harness::start_with(backend, |c| {
        let mut grants = toml::Table::new();
        grants.insert(
            "http_hosts".into(),
            toml::Value::try_from(["localhost"]).unwrap(),
        );
        grants.insert("http_private".into(), toml::Value::Boolean(true));
        grants.insert(
            "http_ca_files".into(),
            toml::Value::try_from([listener_root.display().to_string()]).unwrap(),
        );
        grants.insert("log".into(), toml::Value::Boolean(true));
        let mut secrets = toml::Table::new();
        secrets.insert(
            "account_key".into(),
            toml::Value::String(account_key.clone()),
        );
        secrets.insert("eab_kid".into(), toml::Value::String("acmegate-ra".into()));
        secrets.insert("eab_hmac_key".into(), toml::Value::String(eab_key.clone()));
        grants.insert("secrets".into(), toml::Value::Table(secrets));
        let mut config = toml::Table::new();
        config.insert(
            "directory".into(),
            toml::Value::String(pebble.directory.clone()),
        );
        c.plugins = vec![PluginConfig {
            name: "upstream".into(),
            kind: "issuer-connector".into(),
            file: plugin_component("acme-upstream-issuer"),
            config,
            grants,
        }];
        c.profiles = vec![Profile {
            issuer: "upstream".into(),
            ..Profile::default_server()
        }];
        c.issuance.retry = RetryPolicy {
            max_attempts: 5,
            give_up_after_seconds: 60,
            base_delay_seconds: 1,
            max_delay_seconds: 1,
        };
    })
    .await;

    // lego: issued by Pebble, chained to Pebble's root, revocation forwarded.
    let name = "lego.upstream.test";
    let cert = lego_http_run(&h, name, "lego run via upstream ACME").await;
    verify_chain(&issuing_root, &cert);
    let lego_serial = serial(&cert);
    let stored =
        h.gw.gateway
            .store
            .certificate_by_serial(&lego_serial)
            .expect("stored");
    assert_eq!(stored.issuer, "upstream");
    run(
        lego(&h).args(["-d", name, "revoke", "--reason", "4"]),
        "lego revoke via upstream ACME",
    )
    .await;
    assert_eq!(stored_status(&h, &lego_serial).await, "revoked");

    // certbot, same path.
    let name = "certbot.upstream.test";
    let live = certonly(&h, name, "certbot certonly via upstream ACME").await;
    verify_chain(&issuing_root, &live.join("fullchain.pem"));
    assert!(sans(&live.join("cert.pem")).contains(&format!("DNS:{name}")));
    h.gw.shutdown().await;
}
crate::on_both_backends!(clients_through_upstream_acme, clients_through_upstream_acme);
