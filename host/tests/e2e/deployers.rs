//! Target deployers end to end: certificates issued over ACME and the admin API reach the
//! targets whose names cover them through the `http-push-deployer` plugin, are verified there
//! (over HTTP, and by a TLS handshake with a listener that serves what was pushed), and a
//! target that stays down is retried, audited as failed and reported to the notifiers.

use std::sync::{Arc, Mutex, RwLock};

use acmegate::acme::Identifier;
use acmegate::admin::Role;
use acmegate::authority::deploy::TargetConfig;
use acmegate::plugins::PluginConfig;
use acmegate::store::audit::AuditFilter;
use acmegate::store::PageRequest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

use crate::admin_api::{call, identity, Identity};
use crate::notifications::{event, webhook, webhook_notifier};
use crate::support::*;

/// A deployment target as a platform team might run one: a certificate API on 127.0.0.1
/// (POST installs a certificate, GET answers the serial installed) and a TLS listener that
/// serves the last pushed chain whose key came with it.
pub(crate) struct Edge {
    api_port: u16,
    tls_port: u16,
    pub(crate) pushes: Arc<Mutex<Vec<Value>>>,
}

impl Edge {
    pub(crate) async fn start() -> Edge {
        let pushes = Arc::new(Mutex::new(Vec::<Value>::new()));
        let serving: Arc<RwLock<Option<Arc<rustls::sign::CertifiedKey>>>> = Default::default();
        let (log, install) = (pushes.clone(), serving.clone());
        let api_port = http_peer(move |request| match request.method.as_str() {
            _ if request.path != "/certificate" => (404, String::new()),
            "POST" => {
                let push: Value = serde_json::from_slice(&request.body).expect("JSON push");
                if let Some(key) = push["private_key"].as_str() {
                    *install.write().unwrap() =
                        Some(certified_key(push["chain"].as_str().unwrap(), key));
                }
                log.lock().unwrap().push(push);
                (200, json!({"installed": true}).to_string())
            }
            _ => match log.lock().unwrap().last() {
                Some(push) => (200, json!({"serial": push["serial"]}).to_string()),
                None => (404, String::new()),
            },
        })
        .await;
        let tls_port = tls_listener(serving).await;
        Edge {
            api_port,
            tls_port,
            pushes,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/certificate", self.api_port)
    }

    /// The push of certificate `serial`, once it arrived.
    pub(crate) async fn push_of(&self, serial: &str) -> Value {
        arrived(&self.pushes, "serial", serial).await
    }
}

fn certified_key(chain: &str, key: &str) -> Arc<rustls::sign::CertifiedKey> {
    let certs = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("a key");
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    Arc::new(rustls::sign::CertifiedKey::new(certs, signer))
}

/// Serves whatever certificate is in `serving`; handshakes fail while it is empty.
#[derive(Debug)]
struct Serving(Arc<RwLock<Option<Arc<rustls::sign::CertifiedKey>>>>);

impl rustls::server::ResolvesServerCert for Serving {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.read().unwrap().clone()
    }
}

async fn tls_listener(serving: Arc<RwLock<Option<Arc<rustls::sign::CertifiedKey>>>>) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Serving(serving)));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(sock).await;
            });
        }
    });
    port
}

pub(crate) fn target(name: &str, names: &[&str], attempts: u32, config: Value) -> TargetConfig {
    target_of("push", name, names, attempts, config)
}

/// A target named `name` of the deployer plugin `deployer`, covering `names`, verified.
pub(crate) fn target_of(
    deployer: &str,
    name: &str,
    names: &[&str],
    attempts: u32,
    config: Value,
) -> TargetConfig {
    TargetConfig {
        name: name.into(),
        deployer: deployer.into(),
        names: names.iter().map(|n| n.to_string()).collect(),
        verify: true,
        attempts,
        config: toml_table(config),
    }
}

pub(crate) fn toml_table(value: Value) -> toml::Table {
    toml::Value::try_from(value)
        .unwrap()
        .as_table()
        .cloned()
        .unwrap()
}

pub(crate) fn push_deployer(config: Value) -> PluginConfig {
    let mut grants = toml::Table::new();
    grants.insert(
        "http_hosts".into(),
        toml::Value::Array(vec!["127.0.0.1".into()]),
    );
    grants.insert("http_plain".into(), true.into());
    grants.insert("http_private".into(), true.into());
    // Least privilege: probes only to the loopback targets the tests serve.
    grants.insert(
        "tls_probe_hosts".into(),
        toml::Value::Array(vec!["127.0.0.1".into()]),
    );
    PluginConfig {
        name: "push".into(),
        kind: "target-deployer".into(),
        file: plugin_component("http-push-deployer"),
        config: toml_table(config),
        grants,
    }
}

/// The audit entry `action` about certificate `serial`, once it is written.
pub(crate) async fn audited(h: &Harness, action: &str, serial: &str) -> Value {
    let filter = AuditFilter {
        resource: Some(format!("certificate/{serial}")),
        ..AuditFilter::action(action)
    };
    for _ in 0..300 {
        let (store, filter) = (h.gw.gateway.store.clone(), filter.clone());
        let page = tokio::task::spawn_blocking(move || {
            store.audit_entries(&filter, PageRequest::first(5))
        })
        .await
        .unwrap()
        .unwrap();
        if let Some(entry) = page.items.first() {
            return serde_json::from_str(&entry.details).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {action} for {serial} in the audit log");
}

/// The serial of a certificate for `name` with a key the gateway generates (admin API,
/// profile `short`), so that its targets receive the key too.
pub(crate) async fn generated_serial(h: &Harness, admin: &Identity, name: &str) -> String {
    let generated = call(
        h,
        Some(admin),
        "POST",
        "/api/v1/certificates/generate",
        Some(json!({"dns_names": [name], "profile": "short"})),
        201,
    )
    .await;
    generated["serial"].as_str().unwrap().to_string()
}

pub(crate) async fn issued_serial(
    h: &Harness,
    acme: &acmegate::client::AcmeClient,
    name: &str,
) -> String {
    let (_, chain) = acme
        .issue(&[Identifier::dns(name)], "http-01", None)
        .await
        .expect("issued whatever the targets do");
    let pem = h.path(&format!("{name}.pem"));
    std::fs::write(&pem, &chain).unwrap();
    serial(&pem)
}

async fn certificates_reach_their_targets(backend: Backend) {
    let edge = Edge::start().await;
    let (hook_port, received) = webhook().await;
    let down = format!("http://127.0.0.1:{}/certificate", free_port());
    let deployer = push_deployer(json!({"timeout_ms": 3000}));
    let probe =
        json!({"host": "127.0.0.1", "port": edge.tls_port, "server_name": "tls.edge.example"});
    let targets = vec![
        target(
            "edge-api",
            &["api.edge.example"],
            3,
            json!({"url": edge.url()}),
        ),
        target(
            "edge-tls",
            &["tls.edge.example"],
            3,
            json!({"url": edge.url(), "probe": probe}),
        ),
        target("gone", &["gone.edge.example"], 2, json!({"url": down})),
    ];
    let hook = webhook_notifier("hook", &format!("http://127.0.0.1:{hook_port}/hook"));
    let h = Harness::start_with(backend, move |c| {
        c.acme.auto_approve = true;
        with_short_profile(c);
        c.plugins = vec![deployer, hook];
        c.targets = targets;
    })
    .await;
    let acme = account(&h).await;

    // ACME: the chain goes to the covering target alone, without a key (the client keeps it),
    // and the target's API confirms the serial.
    let api_serial = issued_serial(&h, &acme, "api.edge.example").await;
    let push = edge.push_of(&api_serial).await;
    assert_eq!(push["target"], "edge-api");
    assert_eq!(
        push["identifiers"],
        json!([{"type": "dns", "value": "api.edge.example"}])
    );
    assert!(push["chain"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert!(
        push.get("private_key").is_none(),
        "ACME keys stay with the client"
    );
    let deployed = audited(&h, "certificate.deployed", &api_serial).await;
    assert_eq!(deployed["target"], "edge-api");
    assert_eq!(deployed["verified"], "deployed");
    assert!(
        deployed["receipt"].as_str().unwrap().contains("HTTP 200"),
        "{deployed}"
    );

    // The admin API's generated key travels with the chain; the target serves it over TLS and
    // the deployer's handshake finds the serial.
    let admin = identity(&h, "ops", Role::Admin).await;
    let tls_serial = generated_serial(&h, &admin, "tls.edge.example").await;
    let push = edge.push_of(&tls_serial).await;
    assert_eq!(push["target"], "edge-tls");
    assert!(push["private_key"]
        .as_str()
        .unwrap()
        .contains("BEGIN PRIVATE KEY"));
    let deployed = audited(&h, "certificate.deployed", &tls_serial).await;
    assert_eq!(deployed["target"], "edge-tls");
    assert_eq!(deployed["verified"], "deployed", "{deployed}");

    // A name no target covers goes nowhere.
    let lone = issued_serial(&h, &acme, "lone.example").await;

    // A target that stays down: two attempts, then audited as failed and a `failed` notice.
    let gone = issued_serial(&h, &acme, "gone.edge.example").await;
    let failed = audited(&h, "certificate.deploy_failed", &gone).await;
    assert_eq!(failed["attempts"], 2);
    assert_eq!(failed["deployed"], false);
    assert!(
        failed["error"].as_str().unwrap().contains("POST"),
        "{failed}"
    );
    let notice = event(&received, "failed").await;
    assert_eq!(notice["severity"], "critical");
    assert_eq!(notice["certificate"]["serial"], gone);
    assert!(notice["message"].as_str().unwrap().contains("target gone"));
    assert!(
        !edge
            .pushes
            .lock()
            .unwrap()
            .iter()
            .any(|p| p["serial"] == lone),
        "a certificate goes only where its names are served"
    );

    // An operator redeploys on demand: to a named target (even one that does not cover the
    // names), with one attempt and the outcome in the answer.
    let redeployed = call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/certificates/{api_serial}/deploy"),
        None,
        200,
    )
    .await;
    assert_eq!(redeployed["deployments"][0]["target"], "edge-api");
    assert_eq!(redeployed["deployments"][0]["deployed"], true);
    let pushes_before = edge.pushes.lock().unwrap().len();
    let named = call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/certificates/{lone}/deploy"),
        Some(json!({"targets": ["edge-api", "gone"]})),
        200,
    )
    .await;
    assert_eq!(named["deployments"][0]["deployed"], true);
    assert_eq!(named["deployments"][1]["deployed"], false);
    assert_eq!(named["deployments"][1]["attempts"], 1);
    assert_eq!(edge.pushes.lock().unwrap().len(), pushes_before + 1);
    let unknown = call(
        &h,
        Some(&admin),
        "POST",
        &format!("/api/v1/certificates/{lone}/deploy"),
        Some(json!({"targets": ["nowhere"]})),
        404,
    )
    .await;
    assert!(unknown["detail"].as_str().unwrap().contains("nowhere"));

    // The deployer shows in the plugin status like every other kind.
    let plugins = call(&h, Some(&admin), "GET", "/api/v1/plugins", None, 200).await;
    let push = plugins["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "push")
        .cloned()
        .expect("the deployer is listed");
    assert_eq!(push["kind"], "target-deployer");
    assert!(push["calls"].as_u64().unwrap() >= 6, "{push}");
    h.gw.shutdown().await;
}

crate::on_both_backends!(
    certificates_reach_their_targets,
    certificates_reach_their_targets
);

/// Deployments are owed durably: a target that is down when a certificate is issued keeps a
/// job in the store; a gateway stopped before the target came back delivers it after its
/// restart, and a deployment that carried a generated key (which is never stored) fails after
/// the restart, audited and saying why, instead of waiting forever.
async fn owed_deployments_outlive_the_process(backend: Backend) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let up = Arc::new(AtomicBool::new(false));
    let pushes = Arc::new(Mutex::new(Vec::<Value>::new()));
    let (serving, log) = (up.clone(), pushes.clone());
    let port = http_peer(move |request| {
        if !serving.load(Ordering::SeqCst) {
            return (503, "restarting".into());
        }
        log.lock()
            .unwrap()
            .push(serde_json::from_slice(&request.body).expect("JSON push"));
        (200, json!({"installed": true}).to_string())
    })
    .await;
    let url = format!("http://127.0.0.1:{port}/certificate");
    let unverified = |name: &str, names: &[&str]| TargetConfig {
        verify: false,
        ..target(name, names, 5, json!({"url": url}))
    };
    let targets = vec![
        unverified("later", &["later.example"]),
        unverified("keyed", &["keyed.example"]),
    ];
    let h = Harness::start_with(backend, move |c| {
        c.acme.auto_approve = true;
        with_short_profile(c);
        c.plugins = vec![push_deployer(json!({"timeout_ms": 3000}))];
        c.targets = targets;
    })
    .await;
    let acme = account(&h).await;
    let serial = issued_serial(&h, &acme, "later.example").await;
    let admin = identity(&h, "ops", Role::Admin).await;
    let keyed = generated_serial(&h, &admin, "keyed.example").await;

    // Both first attempts fail; the jobs wait in the store for their retry.
    let store = h.gw.gateway.store.clone();
    let owed = loop {
        let jobs = store.deployment_jobs().unwrap();
        if jobs.len() == 2 && jobs.iter().all(|j| j.attempts == 1) {
            break jobs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for job in &owed {
        let error = job.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("503"), "{error}");
    }
    assert!(owed.iter().any(|j| j.target == "keyed" && j.with_key));
    assert!(owed.iter().any(|j| j.target == "later" && !j.with_key));

    // Stopped before the retries; the target comes back while the gateway is down.
    let config = h.gw.gateway.config.clone();
    let h = h.restart(config, || up.store(true, Ordering::SeqCst)).await;
    let deployed = audited(&h, "certificate.deployed", &serial).await;
    assert_eq!(deployed["target"], "later");
    // One failed before the stop (another may have, if the stop was slow), one after.
    assert!(deployed["attempts"].as_u64().unwrap() >= 2, "{deployed}");
    assert!(pushes.lock().unwrap().iter().any(|p| p["serial"] == serial));

    let failed = audited(&h, "certificate.deploy_failed", &keyed).await;
    assert_eq!(failed["target"], "keyed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("key") && error.contains("never stored"),
        "{error}"
    );
    assert!(
        !pushes.lock().unwrap().iter().any(|p| p["serial"] == keyed),
        "a deployment without its key is not attempted"
    );
    for _ in 0..100 {
        if store.deployment_jobs().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        store.deployment_jobs().unwrap().is_empty(),
        "settled jobs are gone"
    );
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    owed_deployments_outlive_the_process,
    owed_deployments_outlive_the_process
);
