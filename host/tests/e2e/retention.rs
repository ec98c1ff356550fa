//! Retention in a running gateway: once expired objects are `retention.keep_days` past their
//! expiry, the scheduled run prunes them; the certificate stays downloadable with its renewal
//! information, and the audit chain still verifies.

use acmegate::acme::Identifier;
use acmegate::store::{AuditFilter, PageRequest, StoreError, Verdict, RETENTION_TASK};

use crate::support::{account, eventually, Backend, Harness};

const DAY: i64 = 86_400;

async fn the_schedule_prunes_expired_orders_and_keeps_certificates(backend: Backend) {
    let h = Harness::start_with(backend, |c| {
        c.acme.auto_approve = true;
        c.retention.keep_days = 1;
        c.retention.interval_seconds = 1;
    })
    .await;
    let client = account(&h).await;
    let (order_url, chain) = client
        .issue(&[Identifier::dns("kept.example")], "http-01", None)
        .await
        .expect("issued");
    let abandoned = client
        .new_order(&[Identifier::dns("abandoned.example")], None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let abandoned_url = abandoned.location().expect("order URL");
    let id_of = |url: &str| url.rsplit('/').next().unwrap().to_string();
    let (issued, pending) = (id_of(&order_url), id_of(&abandoned_url));
    let store = h.gw.gateway.store.clone();

    // Runs within the objects' lifetimes (one at start, one a second) leave them alone.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert!(store.order(&pending).is_ok());
    assert_eq!(store.authorizations_for_order(&issued).unwrap().len(), 1);

    // Past the authorizations' lifetime (7 days) and keep_days (1).
    h.clock().advance(9 * DAY);
    eventually("the abandoned order pruned", || {
        matches!(store.order(&pending), Err(StoreError::NotFound)).then_some(())
    })
    .await;
    assert!(store.authorizations_for_order(&issued).unwrap().is_empty());
    let gone = client.post(&abandoned_url, None).await.unwrap();
    assert_eq!(gone.status, 404, "{:?}", gone.problem());

    // The issued order and its certificate stay, over ACME too, with their ARI answer.
    let order = client
        .post(&order_url, None)
        .await
        .unwrap()
        .ok()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(order["status"], "valid", "{order}");
    let cert = client
        .post(order["certificate"].as_str().unwrap(), None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cert.body), chain);
    let ari = client.renewal_info(&chain).await.unwrap().ok().unwrap();
    assert!(ari.json().unwrap()["suggestedWindow"]["start"].is_string());

    // The chain verifies and records the run; this gateway ran it.
    assert!(
        matches!(store.verify_audit().unwrap(), Verdict::Intact { .. }),
        "audit chain intact after pruning"
    );
    let runs = store
        .audit_entries(
            &AuditFilter::action("retention.prune"),
            PageRequest::first(10),
        )
        .unwrap();
    let orders: u64 = runs
        .items
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["orders"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(orders >= 1, "{runs:?}");
    let (_, by, _) = store.scheduled(RETENTION_TASK).unwrap();
    assert_eq!(by.as_deref(), Some(h.gw.gateway.issuance.owner()));
}
crate::on_both_backends!(
    the_schedule_prunes_expired_orders_and_keeps_certificates,
    the_schedule_prunes_expired_orders_and_keeps_certificates
);

/// `retention.audit_keep_days`: once entries are older than that (the clock moved two days
/// on), the scheduled run moves them into archive files; the chain in the database verifies
/// from the sealed checkpoint and the files up to it, and the gateway goes on auditing.
async fn the_schedule_archives_old_audit_entries(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let h = Harness::start_with(backend, |c| {
        c.acme.auto_approve = true;
        c.retention.interval_seconds = 1;
        c.retention.audit_keep_days = 1;
        c.retention.audit_archive_dir = archive.clone();
    })
    .await;
    let client = account(&h).await;
    client
        .issue(&[Identifier::dns("archived.example")], "http-01", None)
        .await
        .expect("issued");
    let store = h.gw.gateway.store.clone();
    assert!(
        matches!(
            store.verify_audit().unwrap(),
            Verdict::Intact { archived: 0, .. }
        ),
        "nothing is a day old yet"
    );
    h.clock().advance(2 * DAY);
    let archived = eventually("old audit entries archived", || {
        match store.verify_audit().unwrap() {
            Verdict::Intact { archived, .. } if archived > 0 => Some(archived),
            _ => None,
        }
    })
    .await;
    assert!(
        archived >= 4,
        "account, order, authorization, certificate: {archived}"
    );
    assert!(
        matches!(
            store.verify_audit_archive(&archive).unwrap(),
            Verdict::Intact { entries, .. } if entries >= archived
        ),
        "the archive verifies up to the checkpoint"
    );
    let files = std::fs::read_dir(&archive).unwrap().count();
    assert!(files >= 1);
    // Ordering goes on, audited after the checkpoint.
    client
        .issue(&[Identifier::dns("after.example")], "http-01", None)
        .await
        .expect("issued after archiving");
    assert!(matches!(
        store.verify_audit().unwrap(),
        Verdict::Intact { .. }
    ));
    h.gw.shutdown().await;
}
crate::on_both_backends!(
    the_schedule_archives_old_audit_entries,
    the_schedule_archives_old_audit_entries
);
