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

/// aiosmtpd (PyPI, a real SMTP server) on 127.0.0.1, writing what it receives to a Maildir;
/// with `starttls`, it offers STARTTLS with a certificate for `localhost` (its CA's PEM is
/// returned for the grant's `ca_files`) and refuses mail before it. Stopped on drop.
struct Smtpd {
    child: std::process::Child,
    port: u16,
    maildir: std::path::PathBuf,
}

impl Smtpd {
    fn start(dir: &std::path::Path, starttls: bool) -> (Smtpd, Option<std::path::PathBuf>) {
        let python =
            crate::support::installed_tool("aiosmtpd_venv.sh", "aiosmtpd-venv").join("bin/python");
        let port = free_port();
        let maildir = dir.join("mail");
        let mut args: Vec<String> = vec![
            "-m".into(),
            "aiosmtpd".into(),
            "-n".into(),
            "-l".into(),
            format!("127.0.0.1:{port}"),
        ];
        let mut ca = None;
        if starttls {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            let (pem, key) = (dir.join("smtp.pem"), dir.join("smtp.key"));
            std::fs::write(&pem, cert.cert.pem()).unwrap();
            std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
            args.extend([
                "--tlscert".into(),
                pem.display().to_string(),
                "--tlskey".into(),
                key.display().to_string(),
            ]);
            ca = Some(pem);
        }
        args.extend([
            "-c".into(),
            "aiosmtpd.handlers.Mailbox".into(),
            maildir.display().to_string(),
        ]);
        let smtpd = Smtpd {
            child: std::process::Command::new(python)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("aiosmtpd runs"),
            port,
            maildir,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (smtpd, ca);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("aiosmtpd did not listen on {port}");
    }

    /// The messages received so far, as text.
    fn received(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|entries| {
                entries
                    .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn email_notifier(name: &str, port: u16, ca: Option<&std::path::Path>, to: &str) -> PluginConfig {
    let mut smtp = json!({
        "server": format!("localhost:{port}"),
        "from": "acmegate@example.org",
        "recipients": ["pki@example.org", "@ops.example.org"],
    });
    if let Some(ca) = ca {
        smtp["ca_files"] = json!([ca]);
    }
    let table = |v: Value| {
        toml::Value::try_from(v)
            .unwrap()
            .as_table()
            .cloned()
            .unwrap()
    };
    PluginConfig {
        name: name.into(),
        kind: "notifier".into(),
        file: plugin_component("email-notifier"),
        config: table(json!({"to": [to]})),
        grants: table(json!({"smtp": smtp})),
    }
}

/// The e-mail notifier through a real SMTP server: delivered over STARTTLS (the relay's
/// certificate checked against the granted CA) from the granted sender with the event in the
/// subject and the serial in the body; a relay without STARTTLS gets nothing (the default
/// requires it), and a recipient the grant does not allow gets nothing either. Each failure is
/// the plugin's last error, naming why.
async fn email_notifier_delivers_over_starttls(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (tls_dir, plain_dir) = (dir.path().join("tls"), dir.path().join("plain"));
    std::fs::create_dir_all(&tls_dir).unwrap();
    std::fs::create_dir_all(&plain_dir).unwrap();
    let (secure, ca) = Smtpd::start(&tls_dir, true);
    let (plain, _) = Smtpd::start(&plain_dir, false);
    let plugins = vec![
        email_notifier("mail", secure.port, ca.as_deref(), "pki@example.org"),
        email_notifier("cleartext", plain.port, None, "pki@example.org"),
        email_notifier("stranger", secure.port, ca.as_deref(), "boss@example.com"),
    ];
    let h = Harness::start_with(backend, move |c| {
        c.acme.auto_approve = true;
        c.plugins = plugins;
    })
    .await;
    let admin = crate::admin_api::identity(&h, "ops", acmegate::admin::Role::Admin).await;
    let acme = account(&h).await;
    let (_, chain) = acme
        .issue(&[Identifier::dns("mail.example")], "http-01", None)
        .await
        .expect("issuance");
    let pem = h.path("mail.pem");
    std::fs::write(&pem, &chain).unwrap();
    let serial = serial(&pem);

    let mail = eventually("a message over STARTTLS", || {
        secure.received().into_iter().next()
    })
    .await;
    assert!(mail.contains("From: acmegate@example.org"), "{mail}");
    assert!(mail.contains("To: pki@example.org"), "{mail}");
    assert!(
        mail.contains("Subject: [acmegate] Certificate issued (info): mail.example"),
        "{mail}"
    );
    assert!(mail.contains(&serial), "{mail}");

    let last_error = |name: &'static str| {
        let h = &h;
        let admin = &admin;
        async move {
            let listed =
                crate::admin_api::call(h, Some(admin), "GET", "/api/v1/plugins", None, 200).await;
            listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["last_error"].as_str().map(String::from))
        }
    };
    let mut errors = (None, None);
    for _ in 0..100 {
        errors = (last_error("cleartext").await, last_error("stranger").await);
        if errors.0.is_some() && errors.1.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let cleartext = errors.0.expect("the cleartext relay's failure is recorded");
    assert!(
        cleartext.contains("STARTTLS is not supported"),
        "{cleartext}"
    );
    let stranger = errors.1.expect("the refused recipient is recorded");
    assert!(stranger.contains("smtp.recipients"), "{stranger}");
    assert!(plain.received().is_empty(), "nothing in clear");
    assert_eq!(
        secure.received().len(),
        1,
        "nothing to a recipient not granted"
    );
    h.gw.shutdown().await;
}

crate::on_both_backends!(
    email_notifier_delivers_over_starttls,
    email_notifier_delivers_over_starttls
);
