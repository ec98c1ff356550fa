//! Issuance: the built-in CA issues within the finalize request, once however many finalize
//! requests race; a finalize whose process died is finished by the next start (or by another
//! replica), exactly once; a job whose issuer is gone fails the order with a problem that names
//! it.

use std::time::Duration;

use acmegate::acme::Identifier;
use acmegate::client::csr_p256;
use acmegate::store::{IssuanceJob, Order, Store};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use crate::support::*;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A new order of `c`'s account for `ids`, its challenges answered (auto-approved): the
/// order's URL and JSON.
async fn authorized_order(
    c: &acmegate::client::AcmeClient,
    ids: &[Identifier],
) -> (String, serde_json::Value) {
    let reply = c
        .new_order(ids, None)
        .await
        .expect("newOrder")
        .ok()
        .expect("order created");
    let url = reply.location().expect("order location");
    let order = reply.json().expect("order json");
    c.authorize(&order, "http-01").await.expect("authorized");
    (url, order)
}

/// An order of a fresh account brought to `ready` over ACME (auto-approved challenges);
/// returns its id.
async fn ready_order(h: &Harness, name: &str) -> String {
    let c = account(h).await;
    let (url, _) = authorized_order(&c, &[Identifier::dns(name)]).await;
    let order = c.poll(&url, Duration::from_secs(10)).await.expect("poll");
    assert_eq!(order["status"], "ready");
    url.rsplit('/').next().expect("order id").to_string()
}

/// What a finalize leaves behind when its process dies before the issuer answered: the order
/// `processing`, its job leased to the dead process until `lease_until`.
fn crashed_finalize(store: &Store, order_id: &str, name: &str, issuer: &str, lease_until: i64) {
    let (csr, _key) = csr_p256(&[Identifier::dns(name)]).expect("csr");
    let job = IssuanceJob {
        order_id: order_id.into(),
        issuer: issuer.into(),
        csr: B64.encode(csr),
        attempts: 0,
        next_attempt_at: unix_now(),
        handle: None,
        lease_owner: Some("gw-that-crashed".into()),
        lease_until,
        last_error: None,
        created_at: unix_now(),
    };
    assert!(store.begin_issuance(&job).expect("queue job"));
}

/// The order is valid with exactly one certificate, which chains to the root.
fn assert_issued_once(h: &Harness, store: &Store, order: &Order) {
    assert_eq!(order.status, "valid", "order: {order:?}");
    let certs = store
        .certificates_of_order(&order.id)
        .expect("certificates");
    assert_eq!(certs.len(), 1, "exactly one certificate for {}", order.id);
    assert_eq!(order.certificate_id.as_deref(), Some(certs[0].id.as_str()));
    let path = h.path(&format!("{}.pem", order.id));
    std::fs::write(&path, &certs[0].chain_pem).expect("write chain");
    verify_chain(&h.root_pem, &path);
    assert!(matches!(
        store.issuance_job(&order.id),
        Err(acmegate::store::StoreError::NotFound)
    ));
}

/// A gateway that died mid-issuance: the next start finishes the order. On SQLite the
/// restart takes over at once (one process owns the file); on PostgreSQL, where other
/// replicas may hold leases, once the dead process's lease has run out.
async fn unfinished_issuance_resumes_after_restart(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.acme.auto_approve = true).await;
    let id = ready_order(&h, "resume.example").await;
    let lease_until = match backend {
        Backend::Sqlite => unix_now() + 3600,
        Backend::Postgres => unix_now() - 1,
    };
    let store = h.gw.gateway.store.clone();
    let config = h.gw.gateway.config.clone();
    // Stop the gateway first so that its worker cannot be the one that finishes the job.
    let h = h
        .restart(config, || {
            crashed_finalize(&store, &id, "resume.example", "builtin", lease_until);
            assert_eq!(store.order(&id).expect("order").status, "processing");
        })
        .await;
    let order = wait_settled(&store, &id).await;
    assert_issued_once(&h, &store, &order);
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    unfinished_issuance_resumes_after_restart,
    unfinished_issuance_resumes_after_restart
);

/// A job whose issuer was removed from the configuration fails its order for good, with a
/// problem that says so; nothing is issued.
async fn job_for_a_gone_issuer_fails_the_order(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.acme.auto_approve = true).await;
    let id = ready_order(&h, "gone.example").await;
    let store = h.gw.gateway.store.clone();
    crashed_finalize(&store, &id, "gone.example", "retired-ca", unix_now() - 1);
    let order = wait_settled(&store, &id).await;
    assert_eq!(order.status, "invalid");
    let problem: serde_json::Value =
        serde_json::from_str(order.error.as_deref().expect("order error")).expect("problem json");
    assert_eq!(problem["type"], "urn:ietf:params:acme:error:serverInternal");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("retired-ca"),
        "detail names the issuer: {problem}"
    );
    assert!(store.certificates_of_order(&id).expect("certs").is_empty());
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    job_for_a_gone_issuer_fails_the_order,
    job_for_a_gone_issuer_fails_the_order
);

/// Two replicas on one PostgreSQL database, both running issuance workers, take over the
/// jobs of a replica that died: every order ends with exactly one certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_orphaned_jobs_without_double_issuance() {
    let h = Harness::start_with(Backend::Postgres, |c| c.acme.auto_approve = true).await;
    // Same configuration: same database and CA files, a replica of the same PKI.
    let config = h.gw.gateway.config.clone();
    let second = acmegate::server::start(config, None)
        .await
        .expect("second replica starts");
    let store = h.gw.gateway.store.clone();
    let mut ids = Vec::new();
    for i in 0..12 {
        let name = format!("orphan{i}.example");
        let id = ready_order(&h, &name).await;
        crashed_finalize(&store, &id, &name, "builtin", unix_now() - 1);
        ids.push(id);
    }
    for id in &ids {
        let order = wait_settled(&store, id).await;
        assert_issued_once(&h, &store, &order);
    }
    second.shutdown().await;
    h.gw.shutdown().await;
}

/// The built-in CA issues within the finalize request. Two finalize requests racing for one
/// order (RFC 8555 §7.4): one is answered with the order `valid` and its certificate, the other
/// with `orderNotReady`; the order has exactly one certificate and no job is left behind; the
/// audit log shows the order going from ready to valid with its certificate, never through
/// `processing`.
async fn racing_finalizes_issue_once_at_once(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.acme.auto_approve = true).await;
    let c = account(&h).await;
    let ids = [Identifier::dns("race.example")];
    let (url, order) = authorized_order(&c, &ids).await;
    assert_eq!(
        c.poll(&url, Duration::from_secs(10)).await.unwrap()["status"],
        "ready"
    );
    let (csr, _key) = csr_p256(&ids).expect("csr");
    let body = serde_json::json!({"csr": B64.encode(csr)});
    let finalize = order["finalize"].as_str().unwrap();
    let (a, b) = tokio::join!(c.post(finalize, Some(&body)), c.post(finalize, Some(&body)));
    let (a, b) = (a.unwrap(), b.unwrap());
    let (won, lost) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(won.status, 200, "{}", String::from_utf8_lossy(&won.body));
    let won = won.json().unwrap();
    assert_eq!(won["status"], "valid", "{won}");
    assert!(won["certificate"].is_string());
    assert_eq!(
        lost.problem().map(|p| p.kind),
        Some(acmegate::acme::ProblemType::OrderNotReady),
        "{} {}",
        lost.status,
        String::from_utf8_lossy(&lost.body)
    );

    let store = h.gw.gateway.store.clone();
    let id = url.rsplit('/').next().expect("order id").to_string();
    assert_issued_once(&h, &store, &store.order(&id).expect("order"));
    store.link_pending_audit().expect("link audit");
    let moves: Vec<String> = store
        .audit_entries(
            &acmegate::store::AuditFilter {
                resource: Some(format!("order/{id}")),
                ..Default::default()
            },
            acmegate::store::PageRequest::first(10),
        )
        .expect("audit")
        .items
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.details))
        .collect();
    assert!(
        moves.iter().all(|m| !m.contains("processing")),
        "never processing: {moves:?}"
    );
    let issued = store
        .audit_entries(
            &acmegate::store::AuditFilter::action("certificate.issue"),
            acmegate::store::PageRequest::first(10),
        )
        .expect("audit")
        .items;
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert!(issued[0].details.contains(&id), "{issued:?}");
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    racing_finalizes_issue_once_at_once,
    racing_finalizes_issue_once_at_once
);

/// RFC 8555 §7.4: when the issuer is slower than finalize's wait, finalize answers the order
/// `processing` with Retry-After, and polling reaches `valid` with a certificate.
async fn finalize_answers_processing_then_valid(backend: Backend) {
    let h = Harness::start_with(backend, |c| {
        c.acme.auto_approve = true;
        c.issuance.inline_wait_ms = 0;
    })
    .await;
    let c = account(&h).await;
    let ids = [Identifier::dns("later.example")];
    let (url, order) = authorized_order(&c, &ids).await;
    let (csr, _key) = csr_p256(&ids).expect("csr");
    let finalized = c
        .post(
            order["finalize"].as_str().unwrap(),
            Some(&serde_json::json!({"csr": B64.encode(csr)})),
        )
        .await
        .unwrap()
        .ok()
        .expect("finalize accepted");
    assert_eq!(finalized.json().unwrap()["status"], "processing");
    assert_eq!(finalized.header("retry-after").as_deref(), Some("1"));
    let done = c.poll(&url, Duration::from_secs(10)).await.unwrap();
    assert_eq!(done["status"], "valid", "{done}");
    assert!(done["certificate"].is_string());
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    finalize_answers_processing_then_valid,
    finalize_answers_processing_then_valid
);
