//! Notifier plugins wired to certificate events: the webhook notifier posts `issued` and
//! `revoked` events to a real HTTP receiver, while a notifier whose webhook is down changes
//! nothing for the ACME client.

use std::sync::{Arc, Mutex};

use acmegate::acme::Identifier;
use acmegate::plugins::PluginConfig;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::*;

/// An HTTP receiver on 127.0.0.1 that answers 204 to every request and keeps the JSON bodies.
pub(crate) async fn webhook() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let bodies = received.clone();
    let port = http_peer(move |request| {
        if let Ok(value) = serde_json::from_slice(&request.body) {
            bodies.lock().unwrap().push(value);
        }
        (204, String::new())
    })
    .await;
    (port, received)
}

pub(crate) fn webhook_notifier(name: &str, url: &str) -> PluginConfig {
    let mut config = toml::Table::new();
    config.insert("url".into(), url.into());
    let mut grants = toml::Table::new();
    grants.insert(
        "http_hosts".into(),
        toml::Value::Array(vec!["127.0.0.1".into()]),
    );
    grants.insert("http_plain".into(), true.into());
    grants.insert("http_private".into(), true.into());
    PluginConfig {
        name: name.into(),
        kind: "notifier".into(),
        file: plugin_component("webhook-notifier"),
        config,
        grants,
    }
}

/// Waits (up to 10 s) for a received event named `event` and returns it.
pub(crate) async fn event(received: &Mutex<Vec<Value>>, event: &str) -> Value {
    arrived(received, "event", event).await
}

async fn issued_and_revoked_reach_the_webhook(backend: Backend) {
    let (port, received) = webhook().await;
    let down = format!("http://127.0.0.1:{}/hook", free_port());
    let up = format!("http://127.0.0.1:{port}/hook");
    let h = Harness::start_with(backend, move |c| {
        c.acme.auto_approve = true;
        with_short_profile(c);
        c.plugins = vec![
            webhook_notifier("hook", &up),
            webhook_notifier("down", &down),
        ];
    })
    .await;
    let acme = account(&h).await;
    let (_, chain) = acme
        .issue(&[Identifier::dns("notify.example")], "http-01", None)
        .await
        .expect("issuance works whatever the notifiers do");
    let pem = h.path("notify.pem");
    std::fs::write(&pem, &chain).unwrap();
    let serial = serial(&pem);

    let issued = event(&received, "issued").await;
    assert_eq!(issued["severity"], "info");
    assert_eq!(issued["certificate"]["serial"], serial);
    assert_eq!(
        issued["certificate"]["identifiers"],
        json!([{"type": "dns", "value": "notify.example"}])
    );
    assert!(issued["certificate"]["account"]
        .as_str()
        .unwrap()
        .contains("/acme/acct/"));

    let der = {
        let body: String = chain
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der);
    acme.post(
        &acme.url("revokeCert").unwrap(),
        Some(&json!({"certificate": b64url, "reason": 1})),
    )
    .await
    .unwrap()
    .ok()
    .expect("revocation");
    let revoked = event(&received, "revoked").await;
    assert_eq!(revoked["severity"], "warning");
    assert_eq!(revoked["certificate"]["serial"], serial);

    // A 12-hour certificate: its last-day notice goes out once, however often the check runs.
    let (_, short) = acme
        .issue(
            &[Identifier::dns("brief.example")],
            "http-01",
            Some("short"),
        )
        .await
        .unwrap();
    let pem = h.path("brief.pem");
    std::fs::write(&pem, &short).unwrap();
    let gw = &h.gw.gateway;
    assert_eq!(acmegate::authority::expiry::check(gw).await.unwrap(), 1);
    assert_eq!(
        acmegate::authority::expiry::check(gw).await.unwrap(),
        0,
        "no duplicate notice"
    );
    let expiring = event(&received, "expiring").await;
    assert_eq!(expiring["severity"], "critical");
    assert_eq!(expiring["days_left"], 0);
    assert_eq!(
        expiring["certificate"]["serial"],
        crate::support::serial(&pem)
    );
    h.gw.shutdown().await;
}

crate::on_both_backends!(
    issued_and_revoked_reach_the_webhook,
    issued_and_revoked_reach_the_webhook
);
