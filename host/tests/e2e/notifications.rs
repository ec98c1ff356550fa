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
    notifier(name, "webhook-notifier", config)
}

/// The notifier component `component` as `name`, configured with `config`, granted plain HTTP
/// to 127.0.0.1 (where the tests' receivers listen).
fn notifier(name: &str, component: &str, config: toml::Table) -> PluginConfig {
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
        file: plugin_component(component),
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

/// The JavaScript chat notifier (`examples/chat-notifier-js`, componentize-js against the WIT
/// alone): one gateway, the same `issued` event posted as Slack mrkdwn and as a Teams Adaptive
/// Card to real HTTP receivers, each in the shape its chat system takes.
async fn chat_notifier_js(backend: Backend) {
    let (slack_port, slack) = webhook().await;
    let (teams_port, teams) = webhook().await;
    let chat = |name: &str, port: u16, format: &str| {
        let mut config = toml::Table::new();
        config.insert("url".into(), format!("http://127.0.0.1:{port}/hook").into());
        config.insert("format".into(), format.into());
        notifier(name, "chat-notifier-js", config)
    };
    let plugins = vec![
        chat("slack", slack_port, "slack"),
        chat("teams", teams_port, "teams"),
    ];
    let h = Harness::start_with(backend, move |c| {
        c.acme.auto_approve = true;
        c.plugins = plugins;
    })
    .await;
    let acme = account(&h).await;
    let (_, chain) = acme
        .issue(&[Identifier::dns("chat.example")], "http-01", None)
        .await
        .expect("issuance");
    let pem = h.path("chat.pem");
    std::fs::write(&pem, &chain).unwrap();
    let serial = serial(&pem);

    let text = eventually("a Slack message", || {
        slack.lock().unwrap().first().map(|m| m["text"].clone())
    })
    .await;
    let text = text.as_str().expect("Slack's `text` is a string");
    assert!(
        text.starts_with("*Certificate issued (info)*\n"),
        "mrkdwn title: {text}"
    );
    assert!(text.contains("*Names*: chat.example"), "{text}");
    assert!(text.contains(&format!("*Serial*: {serial}")), "{text}");

    let card = eventually("a Teams card", || teams.lock().unwrap().first().cloned()).await;
    assert_eq!(card["type"], "message");
    let content = &card["attachments"][0]["content"];
    assert_eq!(
        card["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(content["type"], "AdaptiveCard");
    assert_eq!(content["body"][0]["text"], "Certificate issued (info)");
    let facts = content["body"][2]["facts"].as_array().expect("a FactSet");
    assert!(
        facts.contains(&json!({"title": "Serial", "value": serial})),
        "{facts:?}"
    );
    h.gw.shutdown().await;
}

crate::on_both_backends!(chat_notifier_js, chat_notifier_js);

/// How many `expiring` notices the receiver has for certificate `serial`.
fn expiring_notices(received: &Mutex<Vec<Value>>, serial: &str) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["event"] == "expiring" && v["certificate"]["serial"] == serial)
        .cloned()
        .collect()
}

/// Expiry notices on the gateway's clock, moved through a certificate's last 30 days with a
/// restart at each threshold (the check runs at every start) and a second restart after it:
/// each of the 30, 14, 7 and 0-day notices reaches the notifier exactly once.
async fn expiry_notices_once_each_across_restarts(backend: Backend) {
    let (port, received) = webhook().await;
    let hook = webhook_notifier("hook", &format!("http://127.0.0.1:{port}/hook"));
    let mut h = Harness::start_with(backend, move |c| {
        c.acme.auto_approve = true;
        c.plugins = vec![hook];
    })
    .await;
    let acme = account(&h).await;
    let (_, chain) = acme
        .issue(&[Identifier::dns("expiry.example")], "http-01", None)
        .await
        .unwrap();
    let pem = h.path("expiry.pem");
    std::fs::write(&pem, &chain).unwrap();
    let serial = serial(&pem);
    let store = h.gw.gateway.store.clone();
    let lookup = serial.clone();
    let not_after = tokio::task::spawn_blocking(move || store.certificate_by_serial(&lookup))
        .await
        .unwrap()
        .unwrap()
        .not_after;
    assert!(
        not_after - h.gw.gateway.now() > 31 * 86_400,
        "a certificate with more than 30 days to live"
    );
    assert!(expiring_notices(&received, &serial).is_empty());

    const HOUR: i64 = 3_600;
    for (sent, (threshold, severity)) in [
        (30, "info"),
        (14, "warning"),
        (7, "warning"),
        (0, "critical"),
    ]
    .into_iter()
    .enumerate()
    {
        // An hour past the threshold's point.
        let point = not_after - threshold * 86_400 + HOUR;
        h.clock().advance(point - h.gw.gateway.now());
        let config = h.gw.gateway.config.clone();
        h = h.restart(config, || {}).await;
        let notice = eventually(&format!("the {threshold}-day notice"), || {
            let notices = expiring_notices(&received, &serial);
            (notices.len() > sent).then(|| notices[sent].clone())
        })
        .await;
        assert_eq!(notice["severity"], severity, "{notice}");
        assert_eq!(notice["days_left"], (threshold - 1).max(0), "{notice}");
        // The scheduled check and another start find it sent.
        assert_eq!(
            acmegate::authority::expiry::check(&h.gw.gateway)
                .await
                .unwrap(),
            0
        );
        let config = h.gw.gateway.config.clone();
        h = h.restart(config, || {}).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(
            expiring_notices(&received, &serial).len(),
            sent + 1,
            "no second {threshold}-day notice"
        );
    }
    h.gw.shutdown().await;
}

crate::on_both_backends!(
    expiry_notices_once_each_across_restarts,
    expiry_notices_once_each_across_restarts
);
