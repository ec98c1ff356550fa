//! `acmegate bench` runs whole orders without errors on both databases and reports what they
//! cost (its figures are recorded in docs/performance.md, never asserted: speed and size are
//! measured, not unit-tested; that they are reported is).

use acmegate::bench::{run, BenchOptions};
use acmegate::client::KeyAlg;

use crate::support::Backend;

async fn bench_completes_every_order(backend: Backend) {
    let opts = BenchOptions {
        orders: 12,
        duration: None,
        concurrency: 3,
        directory: None,
        ca_cert: None,
        server_pid: None,
        database_url: (backend == Backend::Postgres).then(acmegate_testkit::db::fresh_postgres_url),
        pebble: false,
        key_alg: KeyAlg::Es256,
        // Completeness, not speed, is checked: a CI machine busy with every other test is slow.
        order_timeout_secs: 120,
    };
    let reports = run(opts).await.expect("bench runs");
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!((report.orders, report.errors), (12, 0), "{}", report.line());
    // A counted run is not a timed one.
    assert_eq!(report.steadiness, None);
    assert!(
        report.p50_ms > 0.0 && report.p99_ms >= report.p50_ms,
        "{}",
        report.line()
    );
    // CPU: the server's apart from the load generator's; the database's work per order.
    assert!(
        report.cpu_seconds.is_some_and(|s| s > 0.0),
        "{}",
        report.line()
    );
    assert!(report.load_cpu_seconds > 0.0, "{}", report.line());
    let database = report
        .database
        .as_ref()
        .expect("the database cost per order");
    assert!(
        database.statements_per_order > database.commits_per_order
            && database.commits_per_order >= 1.0,
        "{database:?}"
    );
    assert_eq!(
        database.server_cpu_ms_per_order.is_some(),
        backend == Backend::Postgres,
        "{database:?}"
    );
    assert!(
        database.line().starts_with("database: "),
        "{}",
        database.line()
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
    // Bytes per order: the database grew, and on SQLite retention leaves less of an order
    // in use than the order took (its authorization and challenges go, the certificate and
    // the audit entries stay).
    let storage = report.storage.as_ref().expect("the storage cost per order");
    assert!(storage.grew_bytes > 0, "{storage:?}");
    assert_eq!(
        storage.bytes_per_order,
        storage.grew_bytes as f64 / 12.0,
        "{storage:?}"
    );
    let line = storage.line(report.orders);
    assert!(line.starts_with("storage: "), "{line}");
    match backend {
        Backend::Sqlite => {
            let (live, kept) = (
                storage.in_use_per_order.expect("pages in use"),
                storage
                    .retained_per_order
                    .expect("pages in use after pruning"),
            );
            assert!(live > kept && kept > 0.0, "{storage:?}");
            assert_eq!(storage.measure, "SQLite file and WAL");
        }
        Backend::Postgres => {
            assert_eq!(storage.measure, "pg_database_size");
            assert_eq!(storage.in_use_per_order, None);
        }
    }
}
crate::on_both_backends!(bench_completes_every_order, bench_completes_every_order);

/// `--duration` runs orders until the time is up, not to a count, and reports whether the pace
/// and memory held: the first and last windows' throughput and the process's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_for_a_duration() {
    let opts = BenchOptions {
        orders: 1,
        duration: Some(3),
        concurrency: 2,
        directory: None,
        ca_cert: None,
        server_pid: None,
        database_url: None,
        pebble: false,
        key_alg: KeyAlg::Es256,
        order_timeout_secs: 20,
    };
    let reports = run(opts).await.expect("bench runs");
    let report = &reports[0];
    // Far more than the one order `orders` asked for: the clock, not the count, ended it.
    assert!(
        report.orders > 10 && report.errors == 0,
        "{}",
        report.line()
    );
    assert!(
        report.elapsed >= std::time::Duration::from_secs(3),
        "{:?}",
        report.elapsed
    );
    let steadiness = report
        .steadiness
        .as_ref()
        .expect("a timed run's steadiness");
    assert_eq!(steadiness.window, std::time::Duration::from_secs(1));
    assert!(
        steadiness.first_per_second > 0.0 && steadiness.last_per_second > 0.0,
        "{}",
        steadiness.line()
    );
    assert!(
        steadiness.rss_after_first_mb > 1.0
            && steadiness.rss_max_mb >= steadiness.rss_end_mb
            && steadiness.rss_max_mb >= steadiness.rss_after_first_mb,
        "{}",
        steadiness.line()
    );
}

/// `--directory` with `--server-pid` reports the CPU and memory of the process serving the
/// directory: here the test's own process, where the harness's gateway runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_the_server_process_it_is_given() {
    let h =
        crate::support::Harness::start_with(Backend::Sqlite, |c| c.acme.auto_approve = true).await;
    let opts = BenchOptions {
        orders: 1,
        duration: Some(2),
        concurrency: 2,
        directory: Some(h.directory()),
        ca_cert: Some(h.root_pem.clone()),
        server_pid: Some(std::process::id()),
        database_url: None,
        pebble: false,
        key_alg: KeyAlg::Es256,
        order_timeout_secs: 20,
    };
    let reports = run(opts.clone()).await.expect("bench runs");
    let report = &reports[0];
    assert!(report.orders > 0 && report.errors == 0, "{}", report.line());
    let cpu = report
        .cpu_seconds
        .expect("the server's CPU, read from its /proc entry");
    assert!(cpu > 0.0, "{}", report.line());
    let steadiness = report.steadiness.as_ref().expect("a timed run");
    assert!(steadiness.rss_max_mb > 1.0, "{}", steadiness.line());
    // Without the process, a directory elsewhere has no CPU column.
    let elsewhere = run(BenchOptions {
        server_pid: None,
        duration: None,
        orders: 2,
        ..opts
    })
    .await
    .expect("bench runs");
    assert_eq!(elsewhere[0].cpu_seconds, None, "{}", elsewhere[0].line());
}
