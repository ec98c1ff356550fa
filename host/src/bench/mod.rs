//! `acmegate bench`: full ACME orders (account, newOrder, authorization, challenge, finalize,
//! download) at a chosen concurrency against acmegate (started in-process on a durable SQLite
//! file with auto-approve) and, with `--pebble`, against Debian's Pebble on the same machine.

pub mod pebble;
pub mod ports;
pub mod steadiness;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::acme::Identifier;
use crate::client::{AccountKey, AcmeClient, KeyAlg};
use steadiness::Steadiness;

/// Options of `acmegate bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Full orders to run against each server.
    #[arg(short = 'n', long, default_value_t = 200)]
    pub orders: usize,
    /// Run for this many seconds instead of a number of orders, and report whether the pace
    /// held: throughput in the first and last minute (a third of a shorter run) and the
    /// process's memory over the run.
    #[arg(long, value_name = "SECS", conflicts_with = "orders")]
    pub duration: Option<u64>,
    /// Orders in flight at once (one ACME account per worker).
    #[arg(short = 'c', long, default_value_t = 32)]
    pub concurrency: usize,
    /// Benchmark this directory instead of starting a gateway (needs --ca-cert).
    #[arg(long)]
    pub directory: Option<String>,
    /// PEM root to trust for --directory.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// The process serving --directory, on this machine: its CPU and memory are reported
    /// (without it, the CPU column is empty and the memory is the load generator's).
    #[arg(long, requires = "directory")]
    pub server_pid: Option<u32>,
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
    /// CPU seconds the server used during the run: the in-process gateway's (this process's,
    /// without the load generator's threads) or the server's process (Pebble's, or
    /// `--server-pid`); `None` for a server elsewhere.
    pub cpu_seconds: Option<f64>,
    /// CPU seconds the load generator's threads used: what the clients cost, apart.
    pub load_cpu_seconds: f64,
    /// For the in-process gateway, what an order costs in statements and commits, and in
    /// PostgreSQL's own CPU (see [`DatabaseCost`]).
    pub database: Option<DatabaseCost>,
    /// For the in-process gateway, what a nonce costs it (see [`NonceCost`]).
    pub nonces: Option<NonceCost>,
    /// For the in-process gateway, what an order costs its database (see [`StorageCost`]).
    pub storage: Option<StorageCost>,
    /// For a timed run (`--duration`), whether its pace and memory held (see [`Steadiness`]).
    pub steadiness: Option<Steadiness>,
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

/// What the run's orders cost the database in work, per order.
#[derive(Debug, Clone)]
pub struct DatabaseCost {
    /// Statements sent, `BEGIN` and `COMMIT` included: round trips on PostgreSQL.
    pub statements_per_order: f64,
    /// Top-level transactions committed (each an fsync on durable SQLite).
    pub commits_per_order: f64,
    /// PostgreSQL: CPU milliseconds of the server's processes on this machine (every process
    /// named `postgres`, other databases' work included) per order; `None` on SQLite, whose
    /// work is inside the gateway's CPU.
    pub server_cpu_ms_per_order: Option<f64>,
}

impl DatabaseCost {
    pub fn line(&self) -> String {
        let mut line = format!(
            "database: {:.1} statements/order ({:.1} commits/order)",
            self.statements_per_order, self.commits_per_order
        );
        if let Some(ms) = self.server_cpu_ms_per_order {
            line.push_str(&format!(
                "; PostgreSQL's processes {ms:.2} cpu ms/order, beside the gateway's"
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
        let per_order = |secs: f64| secs * 1000.0 / self.orders.max(1) as f64;
        let server = match self.cpu_seconds {
            Some(secs) => format!("{:.2}", per_order(secs)),
            None => "-".into(),
        };
        format!(
            "{:<10} {:>7} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>12.2}",
            self.target,
            self.orders,
            self.errors,
            self.orders_per_second(),
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            server,
            per_order(self.load_cpu_seconds),
        )
    }
}

/// The server's CPU per order (`cpu ms/ord`) is measured without the load generator, whose
/// own is beside it (`load ms/ord`).
pub const HEADER: &str =
    "target      orders errors  orders/s    p50 ms    p90 ms    p99 ms  cpu ms/ord  load ms/ord";

/// The name of the load generator's threads, by which their CPU time is told apart from the
/// in-process gateway's.
const LOAD_THREADS: &str = "bench-load";

/// CPU nanoseconds of the load generator's threads that have exited: a thread of its
/// runtime's blocking pool that ends during a run takes its CPU out of `/proc/self/task`, and
/// the run's share would come out short (negative, once).
static EXITED_LOAD_THREADS_NANOS: AtomicU64 = AtomicU64::new(0);

/// Adds the calling thread's CPU time to [`EXITED_LOAD_THREADS_NANOS`]; run by each load
/// thread as it stops.
fn count_exiting_load_thread() {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let nanos = u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(t.tv_nsec).unwrap_or(0);
    EXITED_LOAD_THREADS_NANOS.fetch_add(nanos, Ordering::Relaxed);
}

/// CPU seconds of this process's threads named [`LOAD_THREADS`] (Linux), the exited ones
/// included.
fn load_threads_cpu_seconds() -> f64 {
    let exited = EXITED_LOAD_THREADS_NANOS.load(Ordering::Relaxed) as f64 / 1e9;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return exited;
    };
    exited
        + tasks
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == LOAD_THREADS)
            })
            .map(|task| task_cpu_seconds(&task.path()))
            .sum::<f64>()
}

/// CPU seconds of one task (`/proc/PID` or `/proc/PID/task/TID`; 0 when unreadable).
///
/// Read from `schedstat`, whose first field is the time on a CPU in nanoseconds: `stat`'s
/// utime and stime count 10 ms ticks, coarser than a short bench's load generator uses, so
/// they serve only where `schedstat` is missing (kernels without scheduler statistics).
fn task_cpu_seconds(task: &std::path::Path) -> f64 {
    let nanos = std::fs::read_to_string(task.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
    match nanos {
        Some(ns) => ns as f64 / 1e9,
        None => stat_cpu_seconds(&task.join("stat")),
    }
}

/// CPU seconds of this whole process, threads that have ended included, to the nanosecond.
fn process_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// User+system CPU seconds in a `/proc/.../stat` file, in 10 ms ticks (0 when unreadable).
fn stat_cpu_seconds(path: &std::path::Path) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// User+system CPU seconds of every process on this machine named `postgres` (the server's
/// postmaster, backends and workers).
fn postgres_cpu_seconds() -> f64 {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    procs
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|p| {
            std::fs::read_to_string(p.path().join("comm")).is_ok_and(|c| c.trim_end() == "postgres")
        })
        .map(|p| task_cpu_seconds(&p.path()))
        .sum()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs `opts.orders` full orders at `opts.concurrency` against `directory`, from a runtime
/// of its own whose threads ([`LOAD_THREADS`]) are measured apart: `cpu_seconds` is this
/// process's CPU without them (the in-process gateway's; the caller replaces it for a server
/// elsewhere). A timed run samples this process's memory.
pub async fn run_load(
    target: &str,
    directory: &str,
    roots_pem: &[u8],
    opts: &BenchOptions,
) -> anyhow::Result<BenchReport> {
    run_load_watching(
        target,
        directory,
        roots_pem,
        opts,
        "/proc/self/status".into(),
    )
    .await
}

/// [`run_load`], sampling in a timed run the memory of the process whose `/proc/PID/status`
/// is `status`: the server's, where it runs apart.
async fn run_load_watching(
    target: &str,
    directory: &str,
    roots_pem: &[u8],
    opts: &BenchOptions,
    status: PathBuf,
) -> anyhow::Result<BenchReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOAD_THREADS)
        .on_thread_stop(count_exiting_load_thread)
        .enable_all()
        .build()
        .context("failed to start the load generator's runtime")?;
    let (directory, roots_pem, opts) = (directory.to_owned(), roots_pem.to_vec(), opts.clone());
    let clients = runtime
        .spawn(async move {
            clients(&directory, &roots_pem, &opts)
                .await
                .map(|c| (c, opts))
        })
        .await??;
    let (clients, opts) = clients;
    let process_before = process_cpu_seconds();
    let load_before = load_threads_cpu_seconds();
    let started = Instant::now();
    let duration = opts.duration.map(Duration::from_secs);
    let window = duration.map(Steadiness::window_for);
    let done = Arc::new(AtomicBool::new(false));
    let memory =
        window.map(|w| runtime.spawn(sample_rss(status.clone(), started, w / 10, done.clone())));
    let outcome = runtime.spawn(orders(clients, &opts, started)).await?;
    let elapsed = started.elapsed();
    let load_cpu_seconds = load_threads_cpu_seconds() - load_before;
    let process = process_cpu_seconds() - process_before;
    done.store(true, Ordering::Relaxed);
    let rss = match memory {
        Some(task) => task.await?,
        None => Vec::new(),
    };
    runtime.shutdown_background();
    let Outcome {
        mut latencies,
        completed_at,
        errors,
    } = outcome;
    if let Some(first) = errors.first() {
        eprintln!(
            "{target}: {} orders failed; first error: {first}",
            errors.len()
        );
    }
    let steadiness = window.map(|w| Steadiness::measure(&completed_at, elapsed, w, &rss));
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(BenchReport {
        target: target.into(),
        orders: latencies.len(),
        errors: errors.len(),
        elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p90_ms: percentile(&latencies, 0.90),
        p99_ms: percentile(&latencies, 0.99),
        cpu_seconds: Some((process - load_cpu_seconds).max(0.0)),
        load_cpu_seconds,
        database: None,
        nonces: None,
        storage: None,
        steadiness,
    })
}

/// Samples the resident memory of the process of `status` every `every` (seconds since
/// `started`, MB) until `done` is set.
async fn sample_rss(
    status: PathBuf,
    started: Instant,
    every: Duration,
    done: Arc<AtomicBool>,
) -> Vec<(f64, f64)> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    while !done.load(Ordering::Relaxed) {
        tick.tick().await;
        samples.push((started.elapsed().as_secs_f64(), steadiness::rss_mb(&status)));
    }
    samples
}

/// What the load workers brought back.
#[derive(Default)]
struct Outcome {
    /// Each completed order's latency in milliseconds.
    latencies: Vec<f64>,
    /// When each completed order completed, in seconds since the run started.
    completed_at: Vec<f64>,
    /// Why each failed order failed.
    errors: Vec<String>,
}

/// One client with its own account per worker.
async fn clients(
    directory: &str,
    roots_pem: &[u8],
    opts: &BenchOptions,
) -> anyhow::Result<Vec<AcmeClient>> {
    let mut clients = Vec::with_capacity(opts.concurrency.max(1));
    for _ in 0..opts.concurrency.max(1) {
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
    Ok(clients)
}

/// The run: each client orders until `opts.orders` were started, or until `opts.duration`
/// has passed since `started`.
fn orders(
    clients: Vec<AcmeClient>,
    opts: &BenchOptions,
    started: Instant,
) -> impl std::future::Future<Output = Outcome> + Send + 'static {
    let next = Arc::new(AtomicUsize::new(0));
    let total = opts.orders;
    let deadline = opts
        .duration
        .map(|secs| started + Duration::from_secs(secs));
    let order_timeout = Duration::from_secs(opts.order_timeout_secs.max(1));
    async move {
        let mut tasks = Vec::new();
        for client in clients {
            let next = next.clone();
            let more = move || match deadline {
                Some(deadline) => Instant::now() < deadline,
                None => next.fetch_add(1, Ordering::Relaxed) < total,
            };
            tasks.push(tokio::spawn(async move {
                let mut outcome = Outcome::default();
                while more() {
                    let name = format!("{}.bench.test", crate::ids::new_id());
                    let t = Instant::now();
                    let ids = [Identifier::dns(name)];
                    let order = client.issue(&ids, "http-01", None);
                    match tokio::time::timeout(order_timeout, order).await {
                        Ok(Ok(_)) => {
                            outcome.latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                            outcome.completed_at.push(started.elapsed().as_secs_f64());
                        }
                        Ok(Err(e)) => outcome.errors.push(e.to_string()),
                        Err(_) => {
                            outcome.errors.push(format!(
                                "order unfinished after {order_timeout:?}; server stalled?"
                            ));
                            // A stalled server stalls every worker; stop this one.
                            break;
                        }
                    }
                }
                outcome
            }));
        }
        let mut all = Outcome::default();
        for t in tasks {
            match t.await {
                Ok(o) => {
                    all.latencies.extend(o.latencies);
                    all.completed_at.extend(o.completed_at);
                    all.errors.extend(o.errors);
                }
                Err(e) => all.errors.push(format!("a load worker failed: {e}")),
            }
        }
        all
    }
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
        let postgres = opts.database_url.is_some();
        let queries_before = gw.gateway.store.query_counts();
        let pg_before = postgres.then(postgres_cpu_seconds);
        let mut report = run_load("acmegate", &gw.directory_url(), root.as_bytes(), opts).await?;
        let per_order = |n: f64| n / report.orders.max(1) as f64;
        let (statements, commits) = gw.gateway.store.query_counts();
        report.database = Some(DatabaseCost {
            statements_per_order: per_order((statements - queries_before.0) as f64),
            commits_per_order: per_order((commits - queries_before.1) as f64),
            server_cpu_ms_per_order: pg_before
                .map(|before| per_order((postgres_cpu_seconds() - before) * 1000.0)),
        });
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
    let report = run_load_on("pebble", &directory, root.as_bytes(), opts, pebble.pid()).await;
    drop(pebble);
    report
}

/// [`run_load`] against a server in its own process, `pid`, whose CPU and memory are the
/// report's; where the process is not known, the CPU is left out and the memory is this
/// process's.
async fn run_load_on(
    target: &str,
    directory: &str,
    roots_pem: &[u8],
    opts: &BenchOptions,
    pid: Option<u32>,
) -> anyhow::Result<BenchReport> {
    let proc_file = |name: &str| pid.map(|pid| PathBuf::from(format!("/proc/{pid}/{name}")));
    let stat = proc_file("stat");
    let server_cpu = || stat.as_deref().map(stat_cpu_seconds);
    let cpu_before = server_cpu();
    let status = proc_file("status").unwrap_or_else(|| "/proc/self/status".into());
    let mut report = run_load_watching(target, directory, roots_pem, opts, status).await?;
    report.cpu_seconds = server_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    Ok(report)
}

/// Runs the benchmark as the options say and prints the table.
pub async fn run(opts: BenchOptions) -> anyhow::Result<Vec<BenchReport>> {
    // A server elsewhere runs on whatever its operator chose; only the in-process one is known.
    let database = match (&opts.directory, &opts.database_url) {
        (Some(directory), _) => format!("the server at {directory}"),
        (None, Some(url)) => crate::store::redacted_url(url),
        (None, None) => "durable SQLite (synchronous=FULL)".to_string(),
    };
    let amount = match opts.duration {
        Some(secs) => format!("{secs} s"),
        None => format!("{} orders", opts.orders),
    };
    println!(
        "{amount} per server, concurrency {}, {:?} account keys, {database}",
        opts.concurrency, opts.key_alg
    );
    let mut reports = Vec::new();
    let gateway = match (&opts.directory, &opts.ca_cert) {
        (Some(dir), Some(ca)) => {
            let roots =
                std::fs::read(ca).with_context(|| format!("failed to read {}", ca.display()))?;
            run_load_on("target", dir, &roots, &opts, opts.server_pid).await?
        }
        (Some(_), None) => anyhow::bail!("--directory needs --ca-cert"),
        _ => bench_acmegate(&opts).await?,
    };
    println!("{HEADER}");
    println!("{}", gateway.line());
    if let Some(database) = &gateway.database {
        println!("{}", database.line());
    }
    if let Some(storage) = &gateway.storage {
        println!("{}", storage.line(gateway.orders));
    }
    if let Some(steadiness) = &gateway.steadiness {
        println!("{}", steadiness.line());
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
