//! `acmegate bench` runs whole orders without errors on both databases (its figures are
//! recorded in the notes, never asserted: speed is measured, not unit-tested).

use acmegate::bench::{run, BenchOptions};
use acmegate::client::KeyAlg;

use crate::support::Backend;

async fn bench_completes_every_order(backend: Backend) {
    let opts = BenchOptions {
        orders: 12,
        concurrency: 3,
        directory: None,
        ca_cert: None,
        database_url: (backend == Backend::Postgres).then(acmegate_testkit::db::fresh_postgres_url),
        pebble: false,
        key_alg: KeyAlg::Es256,
        order_timeout_secs: 20,
    };
    let reports = run(opts).await.expect("bench runs");
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!((report.orders, report.errors), (12, 0), "{}", report.line());
    assert!(
        report.p50_ms > 0.0 && report.p99_ms >= report.p50_ms,
        "{}",
        report.line()
    );
    // The nonce design the database calls for, timed.
    let nonces = report
        .nonces
        .as_ref()
        .expect("the nonce cost of the gateway");
    let design = match backend {
        Backend::Sqlite => "in memory",
        Backend::Postgres => "sealed",
    };
    assert_eq!(nonces.design, design);
    assert!(nonces.micros > 0.0, "{nonces:?}");
}
crate::on_both_backends!(bench_completes_every_order, bench_completes_every_order);
