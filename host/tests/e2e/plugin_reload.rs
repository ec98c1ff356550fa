//! Hot reload under load: while clients keep placing orders through the newOrder policy
//! plugin, its file is replaced (by rename, by truncate-and-rewrite, and with garbage); no
//! request fails, each new version answers within a second, and a broken file leaves the old
//! version serving. Reading the file reloads nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acmegate::acme::Identifier;
use acmegate::plugins::PluginConfig;

use crate::support::*;

/// Whether the gateway accepts an order for `evil.example` now (the allowlist refuses it, the
/// hostile fixture's policy allows everything).
async fn evil_allowed(c: &acmegate::client::AcmeClient) -> bool {
    c.new_order(&[Identifier::dns("evil.example")], None)
        .await
        .expect("newOrder answers")
        .status
        == 201
}

/// Polls until `evil_allowed` is `want`; returns how long it took.
async fn until_evil_allowed(c: &acmegate::client::AcmeClient, want: bool) -> Duration {
    let started = Instant::now();
    while evil_allowed(c).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the new version did not answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

async fn reload_under_load(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let live = files.path().join("policy.wasm");
    let allowlist = std::fs::read(plugin_component("allowlist-validator")).unwrap();
    let permissive = std::fs::read(plugin_component("hostile-validator")).unwrap();
    std::fs::write(&live, &allowlist).unwrap();
    let file = live.clone();
    let h = Harness::start_with(backend, move |c| {
        c.plugins = vec![PluginConfig {
            name: "policy".into(),
            kind: "challenge-validator".into(),
            file,
            config: toml::toml! { default = ["*.allowed.test"] },
            grants: toml::Table::new(),
        }];
        c.validation.order_policy = "policy".into();
    })
    .await;
    let probe = account(&h).await;
    assert!(
        !evil_allowed(&probe).await,
        "the allowlist refuses at first"
    );

    // Reading the file is not a change: a backup, a checksum or another gateway loading the
    // same file must not reload it.
    for _ in 0..5 {
        assert_eq!(std::fs::read(&live).unwrap(), allowlist);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(acmegate::plugins::watcher::DEBOUNCE * 3).await;
    assert_eq!(
        h.gw.gateway.plugin_reloads.reloads.load(Ordering::SeqCst),
        0,
        "reading the plugin file reloaded it"
    );

    // The load: four clients placing allowed orders until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let c = account(&h).await;
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let r = c
                    .new_order(&[Identifier::dns("ok.allowed.test")], None)
                    .await;
                match r {
                    Ok(reply) if reply.status == 201 => done.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 1. Replaced by rename (how deploy tools install files).
    let tmp = files.path().join(".policy.wasm.new");
    std::fs::write(&tmp, &permissive).unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let took = until_evil_allowed(&probe, true).await;
    eprintln!("reload by rename: the new version answered after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "rename: new version after {took:?}"
    );

    // 2. Truncated and rewritten in place.
    std::fs::write(&live, &allowlist).unwrap();
    let took = until_evil_allowed(&probe, false).await;
    eprintln!("reload by rewrite: the new version answered after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "rewrite: new version after {took:?}"
    );

    // 3. A broken file: the reload fails, the old version keeps serving.
    let failures_before = h.gw.gateway.plugin_reloads.failures.load(Ordering::SeqCst);
    std::fs::write(&live, b"not a component").unwrap();
    let started = Instant::now();
    while h.gw.gateway.plugin_reloads.failures.load(Ordering::SeqCst) == failures_before {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "reload not attempted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!evil_allowed(&probe).await, "the old version still decides");

    // 4. One change, one reload. The live build installed again, ten times by rename (a
    // redeploy of an unchanged build), mends the broken file and reloads nothing; a new build
    // installed twenty times in a row by rename reloads once.
    let reloads = || h.gw.gateway.plugin_reloads.reloads.load(Ordering::SeqCst);
    let before = reloads();
    let install = |bytes: &[u8]| {
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &live).unwrap();
    };
    for _ in 0..10 {
        install(&allowlist);
    }
    tokio::time::sleep(acmegate::plugins::watcher::DEBOUNCE * 4).await;
    assert_eq!(reloads(), before, "the same content reloaded");
    for _ in 0..20 {
        install(&permissive);
    }
    until_evil_allowed(&probe, true).await;
    tokio::time::sleep(acmegate::plugins::watcher::DEBOUNCE * 4).await;
    assert_eq!(
        reloads(),
        before + 1,
        "twenty installs of one build, one reload"
    );

    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    eprintln!(
        "orders during the reloads: {} ok, {} failed",
        done.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst)
    );
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no request failed");
    assert!(done.load(Ordering::SeqCst) > 20, "the load ran");
    assert!(h.gw.gateway.plugin_reloads.reloads.load(Ordering::SeqCst) >= 2);
    h.gw.shutdown().await;
}
crate::on_both_backends!(reload_under_load, reload_under_load);
