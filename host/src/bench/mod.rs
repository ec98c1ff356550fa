//! `acmegate bench`: full ACME orders (account, newOrder, authorization, challenge, finalize,
//! download) at a chosen concurrency against acmegate (started in-process on a durable SQLite
//! file with auto-approve) and, with `--pebble`, against Debian's Pebble on the same machine.

pub mod pebble;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::acme::Identifier;
use crate::client::{AccountKey, AcmeClient, KeyAlg};

/// Options of `acmegate bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Full orders to run against each server.
    #[arg(short = 'n', long, default_value_t = 200)]
    pub orders: usize,
    /// Orders in flight at once (one ACME account per worker).
    #[arg(short = 'c', long, default_value_t = 32)]
    pub concurrency: usize,
    /// Benchmark this directory instead of starting a gateway (needs --ca-cert).
    #[arg(long)]
    pub directory: Option<String>,
    /// PEM root to trust for --directory.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Run the in-process gateway on this database (for PostgreSQL: an empty database it may
    /// fill) instead of a temporary durable SQLite file. On PostgreSQL the CPU column counts
    /// this process only, not the database server's.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Also run Pebble (Debian package `pebble`) with validation off and print the ratio.
    #[arg(long)]
    pub pebble: bool,
    #[arg(long, value_enum, default_value_t = KeyAlg::Es256)]
    pub key_alg: KeyAlg,
    /// An order still unfinished after this many seconds counts as failed (Pebble 2.4 can
    /// deadlock under concurrency; the run must end anyway).
    #[arg(long, default_value_t = 20)]
    pub order_timeout_secs: u64,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub target: String,
    pub orders: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// CPU seconds this process used during the run (gateway and load generator together
    /// when the gateway runs in-process).
    pub cpu_seconds: f64,
    /// For the in-process gateway, what a nonce costs it (see [`NonceCost`]).
    pub nonces: Option<NonceCost>,
    /// For the in-process gateway, what an order costs its database (see [`StorageCost`]).
    pub storage: Option<StorageCost>,
}

/// What the run's orders cost the database, per order.
#[derive(Debug, Clone)]
pub struct StorageCost {
    /// What the size was measured as: the SQLite file and its write-ahead log, or
    /// PostgreSQL's `pg_database_size`.
    pub measure: &'static str,
    /// Growth of the database on disk during the run.
    pub grew_bytes: u64,
    /// `grew_bytes` per order.
    pub bytes_per_order: f64,
    /// SQLite: growth of the pages in use per order, and the same once retention pruned the
    /// run's orders (as it will when their authorizations have expired and `keep_days`
    /// passed): what an order costs for good. Freed pages are reused, so the file stops
    /// growing by more than this. Not measured on PostgreSQL.
    pub in_use_per_order: Option<f64>,
    pub retained_per_order: Option<f64>,
}

impl StorageCost {
    pub fn line(&self, orders: usize) -> String {
        let mut line = format!(
            "storage: {:.0} bytes/order on disk (+{:.1} MB for {orders} orders: {})",
            self.bytes_per_order,
            self.grew_bytes as f64 / 1e6,
            self.measure
        );
        if let (Some(live), Some(kept)) = (self.in_use_per_order, self.retained_per_order) {
            line.push_str(&format!(
                "; in use {live:.0} bytes/order, {kept:.0} after retention pruned them"
            ));
        }
        line
    }
}

/// The nonce design's cost per ACME request, measured on the gateway after its run.
#[derive(Debug, Clone)]
pub struct NonceCost {
    /// `in memory` (SQLite, one process) or `sealed` (PostgreSQL, replicas).
    pub design: &'static str,
    /// Microseconds per issue and redeem.
    pub micros: f64,
}

impl BenchReport {
    pub fn orders_per_second(&self) -> f64 {
        self.orders as f64 / self.elapsed.as_secs_f64()
    }

    pub fn line(&self) -> String {
        format!(
            "{:<10} {:>7} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.2}",
            self.target,
            self.orders,
            self.errors,
            self.orders_per_second(),
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.cpu_seconds * 1000.0 / self.orders.max(1) as f64,
        )
    }
}

pub const HEADER: &str =
    "target      orders errors  orders/s    p50 ms    p90 ms    p99 ms  cpu ms/ord";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// User+system CPU time of this process, from /proc (Linux).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `opts.orders` full orders at `opts.concurrency` against `directory`.
pub async fn run_load(
    target: &str,
    directory: &str,
    roots_pem: &[u8],
    opts: &BenchOptions,
) -> anyhow::Result<BenchReport> {
    let workers = opts.concurrency.max(1);
    let mut clients = Vec::with_capacity(workers);
    for _ in 0..workers {
        let key = AccountKey::generate(opts.key_alg)?;
        let mut c = AcmeClient::connect(directory, roots_pem, key)
            .await
            .context("failed to reach the directory")?;
        c.poll_interval = Duration::from_millis(5);
        c.new_account(&[], None)
            .await
            .context("failed to create a benchmark account")?;
        clients.push(c);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let total = opts.orders;
    let order_timeout = Duration::from_secs(opts.order_timeout_secs.max(1));
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    let mut tasks = Vec::new();
    for client in clients {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let name = format!("{}.bench.test", crate::ids::new_id());
                let t = Instant::now();
                let ids = [Identifier::dns(name)];
                let order = client.issue(&ids, "http-01", None);
                match tokio::time::timeout(order_timeout, order).await {
                    Ok(Ok(_)) => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
                    Ok(Err(e)) => errors.push(e.to_string()),
                    Err(_) => {
                        errors.push(format!(
                            "order unfinished after {order_timeout:?}; server stalled?"
                        ));
                        // A stalled server stalls every worker; stop this one.
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors.extend(e);
    }
    let elapsed = started.elapsed();
    let cpu_seconds = process_cpu_seconds() - cpu_before;
    if let Some(first) = errors.first() {
        eprintln!(
            "{target}: {} orders failed; first error: {first}",
            errors.len()
        );
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(BenchReport {
        target: target.into(),
        orders: latencies.len(),
        errors: errors.len(),
        elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p90_ms: percentile(&latencies, 0.90),
        p99_ms: percentile(&latencies, 0.99),
        cpu_seconds,
        nonces: None,
        storage: None,
    })
}

/// Starts acmegate in-process (temporary data dir, durable SQLite or `--database-url`,
/// auto-approve) and benches it.
async fn bench_acmegate(opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    let dir = tempfile::tempdir().context("failed to create a temporary directory")?;
    let mut config = crate::config::Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    config.ca.key_file = dir.path().join("ca.key");
    config.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.acme.auto_approve = true;
    if let Some(url) = &opts.database_url {
        config.database_url = url.clone();
    }
    // Only ACME is measured.
    config.admin.listen = String::new();
    let gw = crate::server::start(config, None).await?;
    let root = gw.gateway.ca.root_pem();
    let result = async {
        let before = gw.gateway.db(|s| s.database_size()).await?;
        let mut report = run_load("acmegate", &gw.directory_url(), root.as_bytes(), opts).await?;
        // Before the nonce timing, whose redeemed nonces would count on PostgreSQL.
        report.storage = Some(storage_cost(&gw.gateway, before, report.orders).await?);
        report.nonces = Some(nonce_cost(&gw.gateway).await?);
        anyhow::Ok(report)
    }
    .await;
    gw.shutdown().await;
    result
}

/// What the run's orders cost the gateway's database (see [`StorageCost`]). Prunes them as
/// retention will once their authorizations have expired and `retention.keep_days` passed,
/// which the bench cannot wait for: the cutoff is put after every expiry of the run.
async fn storage_cost(
    gw: &crate::authority::Gateway,
    before: crate::store::DatabaseSize,
    orders: usize,
) -> anyhow::Result<StorageCost> {
    let after = gw.db(|s| s.database_size()).await?;
    let lifetime = i64::from(gw.config.acme.authz_lifetime_hours)
        .max(i64::from(gw.config.acme.order_lifetime_hours))
        * 3600;
    let now = gw.now();
    let cutoff = now + lifetime + 1;
    gw.db(move |s| s.prune(cutoff, now, crate::store::PRUNE_BATCH))
        .await?;
    let pruned = gw.db(|s| s.database_size()).await?;
    let per_order = |bytes: u64| bytes as f64 / orders.max(1) as f64;
    let grew = |from: Option<u64>, to: Option<u64>| Some(per_order(to?.saturating_sub(from?)));
    let grew_bytes = after.on_disk.saturating_sub(before.on_disk);
    Ok(StorageCost {
        measure: if before.in_use.is_some() {
            "SQLite file and WAL"
        } else {
            "pg_database_size"
        },
        grew_bytes,
        bytes_per_order: per_order(grew_bytes),
        in_use_per_order: grew(before.in_use, after.in_use),
        retained_per_order: grew(before.in_use, pruned.in_use),
    })
}

/// Nonces timed one at a time, issue then redeem, as every ACME request does.
const NONCE_ROUNDS: u32 = 2_000;

/// What a nonce costs this gateway per request, on its own database: in memory on SQLite
/// (one process), sealed and redeemed in `redeemed_nonces` on PostgreSQL (replicas).
async fn nonce_cost(gw: &crate::authority::Gateway) -> anyhow::Result<NonceCost> {
    let design = match &gw.nonces {
        crate::nonce::Nonces::Local(_) => "in memory",
        crate::nonce::Nonces::Sealed(_) => "sealed",
    };
    let started = Instant::now();
    for _ in 0..NONCE_ROUNDS {
        let now = gw.now();
        let nonce = gw.nonces.issue(now);
        let redeemed = gw.nonces.redeem(&nonce, now, &gw.store).await?;
        anyhow::ensure!(redeemed, "a fresh nonce was refused");
    }
    Ok(NonceCost {
        design,
        micros: (started.elapsed() / NONCE_ROUNDS).as_secs_f64() * 1e6,
    })
}

/// Starts Pebble with validation and its deliberate chaos switched off, and benches it.
async fn bench_pebble(opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    let pebble = crate::bench::pebble::Pebble::start(false).await?;
    let (directory, root) = (pebble.directory.clone(), pebble.root_pem.clone());
    let pid = pebble.pid();
    let cpu_before = pid.map(child_cpu_seconds).unwrap_or(0.0);
    let mut report = run_load("pebble", &directory, root.as_bytes(), opts).await?;
    // For Pebble the server's CPU lives in the child; the load generator's in this process.
    report.cpu_seconds += pid.map(child_cpu_seconds).unwrap_or(0.0) - cpu_before;
    drop(pebble);
    Ok(report)
}

fn child_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs the benchmark as the options say and prints the table.
pub async fn run(opts: BenchOptions) -> anyhow::Result<Vec<BenchReport>> {
    let database = match &opts.database_url {
        Some(url) => crate::store::redacted_url(url),
        None => "durable SQLite (synchronous=FULL)".to_string(),
    };
    println!(
        "{} orders per server, concurrency {}, {:?} account keys, {database}",
        opts.orders, opts.concurrency, opts.key_alg
    );
    let mut reports = Vec::new();
    let gateway = match (&opts.directory, &opts.ca_cert) {
        (Some(dir), Some(ca)) => {
            let roots =
                std::fs::read(ca).with_context(|| format!("failed to read {}", ca.display()))?;
            run_load("target", dir, &roots, &opts).await?
        }
        (Some(_), None) => anyhow::bail!("--directory needs --ca-cert"),
        _ => bench_acmegate(&opts).await?,
    };
    println!("{HEADER}");
    println!("{}", gateway.line());
    if let Some(storage) = &gateway.storage {
        println!("{}", storage.line(gateway.orders));
    }
    if let Some(nonces) = &gateway.nonces {
        println!(
            "nonces ({}): {:.1} us per issue and redeem ({NONCE_ROUNDS} in sequence, after the run)",
            nonces.design, nonces.micros
        );
    }
    reports.push(gateway.clone());
    if opts.pebble {
        let pebble = bench_pebble(&opts).await?;
        println!("{}", pebble.line());
        println!(
            "ratio acmegate/pebble: {:.2}x orders/s, p99 {:.2}x",
            gateway.orders_per_second() / pebble.orders_per_second().max(f64::MIN_POSITIVE),
            gateway.p99_ms / pebble.p99_ms.max(f64::MIN_POSITIVE)
        );
        reports.push(pebble);
    }
    Ok(reports)
}
