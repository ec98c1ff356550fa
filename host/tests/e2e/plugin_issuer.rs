//! Issuer connector plugins behind ACME: a profile names the `scripted-issuer` fixture, which
//! defers, fails for a while, refuses or answers wrongly as configured; the gateway's
//! asynchronous issuance turns each into the right order state, across restarts.

use std::time::Duration;

use acmegate::acme::Identifier;
use acmegate::authority::issuance::RetryPolicy;
use acmegate::ca::{Ca, CaSettings, KeySecret, Profile};
use acmegate::client::{csr_p256, AcmeClient};
use acmegate::config::Config;
use acmegate::plugins::PluginConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::*;

/// Another CA, standing for the one behind the connector, and a CSR with the chain it
/// issued for it (the fixture hands out whatever chain it is configured with).
struct Upstream {
    csr: Vec<u8>,
    chain: String,
    root_pem: String,
}

fn upstream(dir: &std::path::Path, name: &str) -> Upstream {
    let ca = Ca::load_or_create(
        &dir.join("upstream-ca"),
        &KeySecret::Passphrase("upstream".into()),
        &CaSettings {
            root_cn: "Upstream Root".into(),
            intermediate_cn: "Upstream Issuing".into(),
            organization: "upstream".into(),
            crl_url: "https://upstream.invalid/crl".into(),
            ca_issuers_url: "https://upstream.invalid/ca".into(),
        },
    )
    .expect("upstream CA");
    let (csr, _key) = csr_p256(&[Identifier::dns(name)]).expect("csr");
    let parsed = acmegate::ca::parse_csr(&csr).expect("parse csr");
    let issued = ca
        .issue(
            &parsed,
            &[name.to_string()],
            &[],
            &Profile::default_server(),
        )
        .expect("upstream issues");
    Upstream {
        csr,
        chain: issued.chain_pem,
        root_pem: ca.root_pem(),
    }
}

/// Profile `default` issued by the `scripted` plugin with `script`; retries every second.
fn with_scripted(c: &mut Config, script: Value) {
    c.acme.auto_approve = true;
    c.plugins = vec![PluginConfig {
        name: "scripted".into(),
        kind: "issuer-connector".into(),
        file: plugin_component("scripted-issuer"),
        config: toml::Value::try_from(script)
            .expect("script as TOML")
            .as_table()
            .cloned()
            .expect("table"),
        grants: toml::toml! { state = true },
    }];
    c.profiles = vec![Profile {
        issuer: "scripted".into(),
        ..Profile::default_server()
    }];
    c.issuance.retry = RetryPolicy {
        max_attempts: 4,
        give_up_after_seconds: 60,
        base_delay_seconds: 1,
        max_delay_seconds: 1,
    };
}

/// Orders `name`, authorizes it and finalizes with `csr`; returns the order URL and the
/// finalize reply.
async fn finalize(c: &AcmeClient, name: &str, csr: &[u8]) -> (String, acmegate::client::Reply) {
    let reply = c
        .new_order(&[Identifier::dns(name)], None)
        .await
        .unwrap()
        .ok()
        .expect("order");
    let url = reply.location().expect("location");
    let order = reply.json().unwrap();
    c.authorize(&order, "http-01").await.expect("authorized");
    let fin = c
        .post(
            order["finalize"].as_str().unwrap(),
            Some(&json!({"csr": B64.encode(csr)})),
        )
        .await
        .unwrap();
    (url, fin)
}

/// Deferred issuance (`pending`, then `poll`) reaches `valid` with the upstream's chain; the
/// certificate remembers its issuer, revocation goes through the plugin, and the built-in
/// CA's CRL does not list it.
async fn deferred_issuance_and_revocation(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(dir.path(), "deferred.example");
    let h = Harness::start_with(backend, |c| {
        with_scripted(c, json!({"mode": "pending", "chain": up.chain}))
    })
    .await;
    let c = account(&h).await;
    let (url, fin) = finalize(&c, "deferred.example", &up.csr).await;
    assert_eq!(
        fin.json().unwrap()["status"],
        "processing",
        "pending at the CA"
    );
    let done = c.poll(&url, Duration::from_secs(15)).await.unwrap();
    assert_eq!(done["status"], "valid", "{done}");
    let chain = c
        .post(done["certificate"].as_str().unwrap(), None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&chain.body), up.chain);
    let root = h.path("upstream-root.pem");
    std::fs::write(&root, &up.root_pem).unwrap();
    let chain_file = h.path("deferred.pem");
    std::fs::write(&chain_file, &chain.body).unwrap();
    verify_chain(&root, &chain_file);

    let serial = serial(&chain_file);
    let store = h.gw.gateway.store.clone();
    let cert = store.certificate_by_serial(&serial).expect("stored");
    assert_eq!(cert.issuer, "scripted");
    let leaf = openssl::x509::X509::from_pem(&chain.body)
        .unwrap()
        .to_der()
        .unwrap();
    let r = c
        .post(
            &c.url("revokeCert").unwrap(),
            Some(&json!({"certificate": B64.encode(&leaf), "reason": 4})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.problem());
    assert_eq!(stored_status(&h, &serial).await, "revoked");
    assert!(store.revoked_certificates("builtin", 0).unwrap().is_empty());
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    deferred_issuance_and_revocation,
    deferred_issuance_and_revocation
);

/// A CA that is down for the first two attempts: the order stays `processing` while the
/// gateway retries with backoff, then becomes `valid`.
async fn transient_outage_is_retried(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(dir.path(), "flaky.example");
    let h = Harness::start_with(backend, |c| {
        with_scripted(
            c,
            json!({"mode": "flaky", "fail_first": 2, "chain": up.chain}),
        )
    })
    .await;
    let c = account(&h).await;
    let (url, fin) = finalize(&c, "flaky.example", &up.csr).await;
    assert_eq!(fin.json().unwrap()["status"], "processing");
    let id = url.rsplit('/').next().unwrap().to_string();
    let job = h.gw.gateway.store.issuance_job(&id).expect("job queued");
    assert_eq!(job.attempts, 1);
    assert!(job
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("unreachable"));
    let done = c.poll(&url, Duration::from_secs(20)).await.unwrap();
    assert_eq!(done["status"], "valid", "{done}");
    h.gw.shutdown().await;
}
crate::on_both_backends!(transient_outage_is_retried, transient_outage_is_retried);

/// The CA refuses: finalize answers the CA's problem and the order is invalid. A CA that
/// returns a certificate for another key is never believed: the order fails with a problem
/// that says so.
async fn refusals_and_wrong_answers_fail_the_order(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(dir.path(), "refused.example");
    let h = Harness::start_with(backend, |c| with_scripted(c, json!({"mode": "reject"}))).await;
    let c = account(&h).await;
    let (url, fin) = finalize(&c, "refused.example", &up.csr).await;
    let problem = fin.problem().expect("finalize refused");
    assert_eq!(problem.kind, acmegate::acme::ProblemType::BadCsr);
    assert!(
        problem.detail.contains("scripted refusal"),
        "{}",
        problem.detail
    );
    let order = c.post(&url, None).await.unwrap().json().unwrap();
    assert_eq!(order["status"], "invalid");
    h.gw.shutdown().await;

    // A chain for the upstream CSR's key, handed out for a CSR with another key.
    let h = Harness::start_with(backend, |c| {
        with_scripted(c, json!({"mode": "issue", "chain": up.chain}));
        c.issuance.retry.max_attempts = 1;
    })
    .await;
    let c = account(&h).await;
    let (other_csr, _) = csr_p256(&[Identifier::dns("refused.example")]).unwrap();
    let (url, _) = finalize(&c, "refused.example", &other_csr).await;
    let order = c.poll(&url, Duration::from_secs(10)).await.unwrap();
    assert_eq!(order["status"], "invalid", "{order}");
    assert!(
        order["error"]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("another key"),
        "{order}"
    );
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    refusals_and_wrong_answers_fail_the_order,
    refusals_and_wrong_answers_fail_the_order
);

/// The CA is down when the gateway stops mid-issuance; after a restart with the CA back the
/// order completes, with one certificate.
async fn ca_down_across_a_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(dir.path(), "restart.example");
    let h = Harness::start_with(backend, |c| {
        with_scripted(c, json!({"mode": "unavailable"}));
        c.issuance.retry.max_attempts = 100;
    })
    .await;
    let c = account(&h).await;
    let (url, fin) = finalize(&c, "restart.example", &up.csr).await;
    assert_eq!(fin.json().unwrap()["status"], "processing");
    let id = url.rsplit('/').next().unwrap().to_string();
    let store = h.gw.gateway.store.clone();
    let mut config = h.gw.gateway.config.clone();
    // The CA is back. On PostgreSQL the dead process's lease must run out first: the clock
    // moves past it while the gateway is down.
    with_scripted(&mut config, json!({"mode": "issue", "chain": up.chain}));
    config.issuance.retry.max_attempts = 100;
    let (clock, lease) = (h.clock().clone(), config.issuance.lease_seconds);
    let h = h
        .restart(config, || {
            assert_eq!(store.order(&id).unwrap().status, "processing");
            if backend == Backend::Postgres {
                clock.advance(lease + 1);
            }
        })
        .await;
    let order = wait_settled(&store, &id).await;
    assert_eq!(order.status, "valid", "{order:?}");
    assert_eq!(store.certificates_of_order(&id).unwrap().len(), 1);
    h.gw.shutdown().await;
}
crate::on_both_backends!(ca_down_across_a_restart, ca_down_across_a_restart);

/// A retired issuer (`issuance.retired_issuers`): after a restart whose profile issues from
/// the built-in CA instead, the certificate the `scripted` issuer signed reads "renew now" over
/// renewalInfo (RFC 9773), explained as `issuer-retired`, audited once by the system; a
/// second restart moves and audits nothing more; the renewal comes from the built-in CA.
async fn a_retired_issuer_moves_its_windows(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(dir.path(), "retired.example");
    let h = Harness::start_with(backend, |c| {
        with_scripted(c, json!({"mode": "issue", "chain": up.chain}));
    })
    .await;
    let c = account(&h).await;
    let (url, _) = finalize(&c, "retired.example", &up.csr).await;
    let store = h.gw.gateway.store.clone();
    let order = wait_settled(&store, url.rsplit('/').next().unwrap()).await;
    assert_eq!(order.status, "valid", "{order:?}");
    let (start, _, body) = suggested_window(&c, &up.chain).await;
    assert!(start > h.clock().now(), "not due yet: {body}");

    let mut config = h.gw.gateway.config.clone();
    config.profiles = vec![Profile::default_server()];
    config.issuance.retired_issuers = vec!["scripted".into()];
    let h = h.restart(config.clone(), || {}).await;
    // The gateway listens on a new port: a client of the new one.
    let c = account(&h).await;
    let (_, end, body) = suggested_window(&c, &up.chain).await;
    assert!(end <= h.clock().now(), "renew now: {body}");
    let page = body["explanationURL"].as_str().expect("explained");
    assert!(
        page.ends_with("/renewal-explanations/issuer-retired"),
        "{page}"
    );
    let text = c.get(page).await.unwrap();
    assert_eq!(text.status, 200);
    assert!(String::from_utf8_lossy(&text.body).contains("out of service"));
    let audited = |store: &acmegate::store::Store| {
        store
            .audit_entries(
                &acmegate::store::AuditFilter::action("certificate.renew_now"),
                acmegate::store::PageRequest::first(10),
            )
            .unwrap()
            .items
    };
    let entries = audited(&store);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].actor, "system");
    let serial = acmegate::client::cert_id(&up.chain).unwrap();
    let serial = acmegate::acme::renewal::CertId::parse(&serial)
        .unwrap()
        .serial_hex();
    let moved_at = store.renewal_state(&serial).unwrap().marks.renew_now_at;
    assert!(moved_at.is_some());

    // The next start finds nothing left to move.
    h.clock().advance(60);
    let h = h.restart(config, || {}).await;
    let c = account(&h).await;
    assert_eq!(audited(&store).len(), 1, "moved once");
    assert_eq!(
        store.renewal_state(&serial).unwrap().marks.renew_now_at,
        moved_at
    );

    // The client renews, through the profile's current issuer.
    let (url, _) = c
        .issue(&[Identifier::dns("retired.example")], "http-01", None)
        .await
        .unwrap();
    let renewed = store
        .certificates_of_order(url.rsplit('/').next().unwrap())
        .unwrap();
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].issuer, acmegate::ca::BUILTIN_ISSUER);
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    a_retired_issuer_moves_its_windows,
    a_retired_issuer_moves_its_windows
);
