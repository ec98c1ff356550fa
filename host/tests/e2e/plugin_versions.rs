//! Plugins built against `acmegate:plugin@0.1.0` (the in-tree plugins and SDK of
//! `CONTRACT_0_1_REVISION`, built once under the target dir) beside 0.2.0 builds of the same
//! plugins in one gateway: a 0.1.0 validator decides http-01 while a 0.2.0 one decides dns-01
//! and the order policy; certificates reach targets of a 0.1.0 and a 0.2.0 deployer; both
//! versions' notifiers deliver the same `failed` notices. A target that refuses a push (HTTP
//! 403) is retried up to its attempts through the 0.1.0 deployer, whose errors are bare
//! strings, and fails at the first attempt through the 0.2.0 one, which calls it permanent.

use std::path::PathBuf;
use std::sync::Mutex;

use acmegate::acme::{Identifier, ProblemType};
use acmegate::plugins::PluginConfig;
use serde_json::{json, Value};

use crate::deployers::{audited, target_of, toml_table, Edge};
use crate::notifications::webhook;
use crate::support::*;

/// The 0.1.0 build of the in-tree plugin `name`.
pub(crate) fn plugin_component_v0_1(name: &str) -> PathBuf {
    acmegate_plugin_build::contract_0_1_plugins().join(format!("{name}.wasm"))
}

/// Plain HTTP and TLS probes to 127.0.0.1, where the tests' peers listen.
fn loopback() -> toml::Table {
    toml_table(json!({
        "http_hosts": ["127.0.0.1"],
        "http_plain": true,
        "http_private": true,
        "tls_probe_hosts": ["127.0.0.1"],
    }))
}

fn plugin(
    name: &str,
    kind: &str,
    file: PathBuf,
    config: Value,
    grants: toml::Table,
) -> PluginConfig {
    PluginConfig {
        name: name.into(),
        kind: kind.into(),
        file,
        config: toml_table(config),
        grants,
    }
}

/// The serial of the certificate `c` gets for `name` through `challenge`.
async fn issued(
    h: &Harness,
    c: &acmegate::client::AcmeClient,
    name: &str,
    challenge: &str,
) -> String {
    let (_, chain) = c
        .issue(&[Identifier::dns(name)], challenge, None)
        .await
        .unwrap_or_else(|e| panic!("{name} through {challenge}: {e}"));
    let pem = h.path(&format!("{name}.pem"));
    std::fs::write(&pem, &chain).unwrap();
    serial(&pem)
}

/// The `failed` notice about `serial` that `received` got.
async fn failed_notice(received: &Mutex<Vec<Value>>, serial: &str) -> Value {
    eventually(&format!("a failed notice about {serial}"), || {
        received
            .lock()
            .unwrap()
            .iter()
            .find(|v| v["event"] == "failed" && v["certificate"]["serial"] == serial)
            .cloned()
    })
    .await
}

async fn both_contract_versions_serve_in_one_gateway(backend: Backend) {
    let edge = Edge::start().await;
    let refusing = http_peer(|_| (403, json!({"error": "forbidden"}).to_string())).await;
    let refusing = format!("http://127.0.0.1:{refusing}/certificate");
    let (old_hook_port, old_hook) = webhook().await;
    let (new_hook_port, new_hook) = webhook().await;
    let plugins = vec![
        plugin(
            "allow-old",
            "challenge-validator",
            plugin_component_v0_1("allowlist-validator"),
            json!({"default": ["*.versions.test"], "challenge_types": ["http-01"]}),
            toml::Table::new(),
        ),
        plugin(
            "allow-new",
            "challenge-validator",
            plugin_component("allowlist-validator"),
            json!({"default": ["*.versions.test"], "challenge_types": ["dns-01"]}),
            toml::Table::new(),
        ),
        plugin(
            "push-old",
            "target-deployer",
            plugin_component_v0_1("http-push-deployer"),
            json!({"timeout_ms": 3000}),
            loopback(),
        ),
        plugin(
            "push-new",
            "target-deployer",
            plugin_component("http-push-deployer"),
            json!({"timeout_ms": 3000}),
            loopback(),
        ),
        plugin(
            "hook-old",
            "notifier",
            plugin_component_v0_1("webhook-notifier"),
            json!({"url": format!("http://127.0.0.1:{old_hook_port}/hook")}),
            loopback(),
        ),
        plugin(
            "hook-new",
            "notifier",
            plugin_component("webhook-notifier"),
            json!({"url": format!("http://127.0.0.1:{new_hook_port}/hook")}),
            loopback(),
        ),
    ];
    let targets = vec![
        target_of(
            "push-old",
            "edge-old",
            &["old.versions.test"],
            3,
            json!({"url": edge.url()}),
        ),
        target_of(
            "push-new",
            "edge-new",
            &["new.versions.test"],
            3,
            json!({"url": edge.url()}),
        ),
        target_of(
            "push-old",
            "refusing-old",
            &["refused-old.versions.test"],
            2,
            json!({"url": refusing}),
        ),
        target_of(
            "push-new",
            "refusing-new",
            &["refused-new.versions.test"],
            3,
            json!({"url": refusing}),
        ),
    ];
    let h = Harness::start_with(backend, move |c| {
        c.plugins = plugins;
        c.targets = targets;
        c.validation.challenge_plugins = [
            ("http-01".to_string(), "allow-old".to_string()),
            ("dns-01".to_string(), "allow-new".to_string()),
        ]
        .into();
        c.validation.order_policy = "allow-new".into();
    })
    .await;
    let c = account(&h).await;

    // The 0.2.0 policy refuses at newOrder what is outside its list.
    let refused = c
        .new_order(&[Identifier::dns("elsewhere.example")], None)
        .await
        .unwrap();
    let problem = refused.problem().expect("refused at newOrder");
    assert_eq!(problem.kind, ProblemType::RejectedIdentifier);

    // http-01 is decided by the 0.1.0 validator (nothing answers on the http-01 port), the
    // certificate deployed by the 0.1.0 deployer and verified by it.
    let old = issued(&h, &c, "old.versions.test", "http-01").await;
    assert_eq!(edge.push_of(&old).await["target"], "edge-old");
    let deployed = audited(&h, "certificate.deployed", &old).await;
    assert_eq!(deployed["deployer"], "push-old");
    assert_eq!(deployed["verified"], "deployed", "{deployed}");

    // dns-01 by the 0.2.0 validator, deployed and verified by the 0.2.0 deployer.
    let new = issued(&h, &c, "new.versions.test", "dns-01").await;
    assert_eq!(edge.push_of(&new).await["target"], "edge-new");
    let deployed = audited(&h, "certificate.deployed", &new).await;
    assert_eq!(deployed["deployer"], "push-new");
    assert_eq!(deployed["verified"], "deployed", "{deployed}");

    // A target that refuses: the 0.2.0 deployer says 403 is permanent, so one attempt of
    // three; the 0.1.0 one cannot say so, so every attempt.
    let refused_new = issued(&h, &c, "refused-new.versions.test", "dns-01").await;
    let failed = audited(&h, "certificate.deploy_failed", &refused_new).await;
    assert_eq!(failed["attempts"], 1, "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("failed permanently") && error.contains("HTTP 403"),
        "{error}"
    );
    let refused_old = issued(&h, &c, "refused-old.versions.test", "http-01").await;
    let failed = audited(&h, "certificate.deploy_failed", &refused_old).await;
    assert_eq!(failed["attempts"], 2, "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        !error.contains("permanently") && error.contains("HTTP 403"),
        "{error}"
    );

    // Both notifiers hear of both failures.
    for received in [&old_hook, &new_hook] {
        for serial in [&refused_new, &refused_old] {
            let notice = failed_notice(received, serial).await;
            assert_eq!(notice["severity"], "critical");
        }
    }
    let pushes = edge.pushes.lock().unwrap().len();
    assert_eq!(pushes, 2, "the edge got the two certificates it serves");
    h.gw.shutdown().await;
}

crate::on_both_backends!(
    both_contract_versions_serve_in_one_gateway,
    both_contract_versions_serve_in_one_gateway
);
