//! Challenge validator plugins wired into ACME: a challenge type mapped to a plugin is decided
//! by it (lego gets a certificate through the allowlist validator with nothing answering on
//! the http-01 port), the order policy refuses names at newOrder, a custom challenge type is
//! offered and decided, and a plugin that traps fails one challenge, not the gateway.

use acmegate::acme::{Identifier, ProblemType};
use acmegate::config::Config;
use acmegate::plugins::PluginConfig;
use serde_json::json;

use crate::lego::{lego, lego_cert};
use crate::support::*;

fn validator(name: &str, component: &str, config: serde_json::Value) -> PluginConfig {
    PluginConfig {
        name: name.into(),
        kind: "challenge-validator".into(),
        file: plugin_component(component),
        config: toml::Value::try_from(config)
            .expect("toml")
            .as_table()
            .cloned()
            .expect("table"),
        grants: toml::Table::new(),
    }
}

fn with_allowlist(c: &mut Config) {
    c.plugins = vec![validator(
        "allow",
        "allowlist-validator",
        json!({"default": ["*.allowed.test"]}),
    )];
    c.validation.challenge_plugins = [("http-01".to_string(), "allow".to_string())].into();
    c.validation.order_policy = "allow".into();
}

async fn allowlist_decides_http01_and_policy(backend: Backend) {
    let h = Harness::start_with(backend, with_allowlist).await;
    // lego serves http-01 on a port the gateway never checks: only the plugin decides.
    let lego_port = format!("127.0.0.1:{}", free_port());
    let name = "web.allowed.test";
    run(
        lego(&h).args(["--http", "--http.port", &lego_port, "-d", name, "run"]),
        "lego run through the allowlist validator",
    )
    .await;
    verify_chain(&h.root_pem, &lego_cert(&h, name));

    // Outside the list: refused at newOrder, one subproblem per refused name.
    let c = account(&h).await;
    let r = c
        .new_order(
            &[
                Identifier::dns("ok.allowed.test"),
                Identifier::dns("evil.example"),
            ],
            None,
        )
        .await
        .unwrap();
    let problem = r.problem().expect("refused");
    assert_eq!(problem.kind, ProblemType::RejectedIdentifier);
    assert_eq!(problem.subproblems.len(), 1, "{problem:?}");
    assert_eq!(
        problem.subproblems[0]
            .identifier
            .as_ref()
            .map(|i| i.value.as_str()),
        Some("evil.example")
    );
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    allowlist_decides_http01_and_policy,
    allowlist_decides_http01_and_policy
);

/// A custom challenge type (`hostile-01`, from the hostile fixture) is offered and decided by
/// its plugin; when the plugin traps, that challenge fails with a clear problem and the
/// gateway keeps serving.
async fn custom_type_and_faulty_plugin(backend: Backend) {
    let h = Harness::start_with(backend, |c| {
        c.plugins = vec![validator("hostile", "hostile-validator", json!({}))];
        c.validation.challenge_plugins = [("hostile-01".to_string(), "hostile".to_string())].into();
    })
    .await;
    let c = account(&h).await;
    let order = c
        .new_order(&[Identifier::dns("good.test")], None)
        .await
        .unwrap()
        .ok()
        .unwrap()
        .json()
        .unwrap();
    let authz = c
        .post(order["authorizations"][0].as_str().unwrap(), None)
        .await
        .unwrap()
        .json()
        .unwrap();
    let offered: Vec<&str> = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ch| ch["type"].as_str())
        .collect();
    assert!(
        offered.contains(&"hostile-01") && offered.contains(&"http-01"),
        "{offered:?}"
    );
    c.issue(&[Identifier::dns("good.test")], "hostile-01", None)
        .await
        .expect("issued through the custom challenge type");

    let err = c
        .issue(&[Identifier::dns("panic.test")], "hostile-01", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("serverInternal") && err.contains("could not decide"),
        "{err}"
    );
    c.issue(&[Identifier::dns("after.test")], "hostile-01", None)
        .await
        .expect("the gateway still serves after the trap");
    h.gw.shutdown().await;
}
crate::on_both_backends!(custom_type_and_faulty_plugin, custom_type_and_faulty_plugin);

/// A tiny ownership service: names containing `deny` belong to someone else.
async fn ownership_service() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let body = if request.contains("deny") {
                    r#"{"allow": false, "reason": "owned by team-b"}"#
                } else {
                    r#"{"allow": true}"#
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, task)
}

/// The http-check validator asks the operator's service: an allowed name is validated
/// without a network challenge, a refused one is refused at newOrder with the service's
/// reason, and with the service down the policy fails closed.
async fn http_check_service_decides(backend: Backend) {
    let (port, service) = ownership_service().await;
    let h = Harness::start_with(backend, |c| {
        let mut plugin = validator(
            "check",
            "http-check-validator",
            json!({"url": format!("http://127.0.0.1:{port}/owner"), "timeout_ms": 1000}),
        );
        plugin.grants = toml::toml! {
            http_hosts = ["127.0.0.1"]
            http_plain = true
            http_private = true
        };
        c.plugins = vec![plugin];
        c.validation.challenge_plugins = [("http-01".to_string(), "check".to_string())].into();
        c.validation.order_policy = "check".into();
    })
    .await;
    let c = account(&h).await;
    c.issue(&[Identifier::dns("mine.test")], "http-01", None)
        .await
        .expect("the service allows it");
    let r = c
        .new_order(&[Identifier::dns("deny.test")], None)
        .await
        .unwrap();
    let problem = r.problem().expect("refused");
    assert_eq!(problem.kind, ProblemType::RejectedIdentifier);
    assert!(
        problem.subproblems[0].detail.contains("owned by team-b"),
        "{problem:?}"
    );
    service.abort();
    let _ = service.await;
    let r = c
        .new_order(&[Identifier::dns("mine2.test")], None)
        .await
        .unwrap();
    let problem = r.problem().expect("fails closed");
    assert_eq!(problem.kind, ProblemType::ServerInternal);
    assert!(problem.detail.contains("unreachable"), "{}", problem.detail);
    h.gw.shutdown().await;
}
crate::on_both_backends!(http_check_service_decides, http_check_service_decides);

/// The dns-persist-01 example validator in `component`: a standing `_validation-persist` TXT
/// record naming the account validates its orders through the custom type `dns-persist-01`,
/// looked up with the `dns` capability through the gateway's resolver; another account gets an
/// invalid authorization whose detail names the record and the account.
async fn dns_persist_through(backend: Backend, component: &str) {
    let h = Harness::start_with(backend, |c| {
        let mut plugin = validator(
            "persist",
            component,
            json!({"issuer_domain": "acmegate.invalid"}),
        );
        plugin.grants.insert("dns".into(), true.into());
        c.plugins = vec![plugin];
        c.validation.challenge_plugins =
            [("dns-persist-01".to_string(), "persist".to_string())].into();
    })
    .await;
    let owner = account(&h).await;
    let account_url = owner.kid.clone().expect("registered");
    h.dns.add_txt(
        "_validation-persist.persist.example",
        &format!("acmegate.invalid; accounturi={account_url}"),
    );
    let (_, chain) = owner
        .issue(
            &[Identifier::dns("persist.example")],
            "dns-persist-01",
            None,
        )
        .await
        .expect("issued from the standing record");
    assert!(chain.contains("BEGIN CERTIFICATE"));
    let stranger = account(&h).await;
    let refused = stranger
        .issue(
            &[Identifier::dns("persist.example")],
            "dns-persist-01",
            None,
        )
        .await;
    let refused = format!("{refused:?}");
    assert!(
        refused.contains("no TXT record at _validation-persist.persist.example names issuer")
            && refused.contains("accounturi="),
        "another account is refused with the reason: {refused}"
    );
    h.gw.shutdown().await;
}

/// The Rust example, `examples/dns-persist-validator` (a plugin author's crate built on its
/// own against the SDK).
async fn dns_persist_example(backend: Backend) {
    dns_persist_through(backend, "dns-persist-validator").await
}
crate::on_both_backends!(dns_persist_example, dns_persist_example);

/// The same validator in Python, `examples/dns-persist-validator-py` (componentize-py against
/// the WIT alone, no SDK): the contract is language-neutral, and an 18 MB interpreter component
/// loads and decides within a validator's limits.
async fn dns_persist_example_py(backend: Backend) {
    dns_persist_through(backend, "dns-persist-validator-py").await
}
crate::on_both_backends!(dns_persist_example_py, dns_persist_example_py);

/// The same validator in JavaScript, `examples/dns-persist-validator-js` (componentize-js
/// against the WIT alone, no SDK): a 12 MB SpiderMonkey component decides the same way, with the
/// same messages.
async fn dns_persist_example_js(backend: Backend) {
    dns_persist_through(backend, "dns-persist-validator-js").await
}
crate::on_both_backends!(dns_persist_example_js, dns_persist_example_js);
