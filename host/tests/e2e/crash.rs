//! Crash safety: `acmegate serve` killed with SIGKILL under load, three times, and started
//! again on the same data. Clients keep placing orders through it; some are mid-validation
//! (their http-01 responder answers slowly) and some mid-issuance when the process dies.
//! Afterwards every order settles (a client finishes what it had started, as certbot or lego
//! would on a retry; nothing is left `processing`), every certificate a client downloaded is
//! in the store, no order has two certificates, and the audit chain is intact.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acmegate::acme::Identifier;
use acmegate::client::{csr_p256, AccountKey, AcmeClient, KeyAlg};
use acmegate_testkit::dns::TestDnsServer;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_acmegate");
/// Concurrent clients.
const CLIENTS: usize = 12;
/// How long the load runs between two kills.
const RUN: Duration = Duration::from_millis(2500);
const KILLS: usize = 3;
/// How long every order may take to settle once the last process is up.
const SETTLE: Duration = Duration::from_secs(60);
/// How long a slow http-01 answer takes: long enough that kills find validations under way.
const SLOW_ANSWER: Duration = Duration::from_millis(1500);

/// Where each client stands, counted at every kill.
#[derive(Default)]
struct Phases {
    validating: AtomicUsize,
    finalizing: AtomicUsize,
}

/// What the clients saw: every order they created (URL, and the client of its account), and
/// the certificates they downloaded (serial by order URL).
#[derive(Default)]
struct Seen {
    orders: Mutex<Vec<(String, Arc<AcmeClient>)>>,
    downloaded: Mutex<BTreeMap<String, String>>,
}

/// An http-01 responder that answers tokens registered as slow after [`SLOW_ANSWER`].
async fn responder(port: u16) -> Arc<Mutex<BTreeMap<String, (String, bool)>>> {
    let tokens = Arc::new(Mutex::new(BTreeMap::<String, (String, bool)>::new()));
    let map = tokens.clone();
    http01_serve(port, move |token| {
        let (body, slow) = map.lock().unwrap().get(token).cloned()?;
        Some((body, if slow { SLOW_ANSWER } else { Duration::ZERO }))
    })
    .await;
    tokens
}

/// The gateway under test: its configuration and data in `dir`, on a fixed port.
struct Gateway {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// A failed test must not leave the gateway running (holding database connections).
impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Gateway {
    /// A gateway with its configuration file in `dir` (data in `dir/data`, the CA key secret in
    /// `dir/secrets`), on a free port, not started; `extra` is appended to the file.
    fn configured(
        dir: &Path,
        database_url: &str,
        http_port: u16,
        dns: &TestDnsServer,
        extra: &str,
    ) -> Gateway {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("acmegate.toml"),
            format!(
                r#"data_dir = "./data"
database_url = "{database_url}"
[ca]
key_file = "./secrets/ca.key"
[admin]
listen = ""
[validation]
http01_port = {http_port}
dns_resolver = "{}"
timeout_seconds = 5
[server]
listen = "127.0.0.1:{port}"
{extra}
"#,
                dns.addr()
            ),
        )
        .unwrap();
        Gateway {
            dir: dir.to_path_buf(),
            port,
            child: None,
        }
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/acme/directory", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.join("serve.log")
    }

    /// Starts `acmegate serve` and waits until it answers `/health` (the port accepts
    /// connections from the moment it is bound, before the store and the CA are open).
    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .current_dir(&self.dir)
            .env_remove("ACMEGATE_CONFIG")
            .env("ACMEGATE_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("acmegate serve starts");
        self.child = Some(child);
        let started = Instant::now();
        while !self.healthy().await {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "acmegate serve exited with {status}: {}",
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "acmegate serve did not listen within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn healthy(&self) -> bool {
        let root = self.dir.join("data/ca/root.pem");
        root.exists()
            && Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "--cacert"])
                .arg(&root)
                .arg(format!("https://127.0.0.1:{}/health", self.port))
                .status()
                .is_ok_and(|s| s.success())
    }

    fn signal(&mut self, signal: &str) {
        self.send(signal);
        self.child.take().expect("running").wait().unwrap();
    }

    /// Sends `signal` and leaves the process to go on (or stay stopped, for `-STOP`).
    fn send(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
    }

    /// The name it leases work under (kept in its data directory).
    fn owner(&self) -> String {
        let id = std::fs::read_to_string(self.dir.join("data/instance-id")).expect("instance-id");
        format!("gw-{}", id.trim())
    }

    fn roots(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("data/ca/root.pem")).expect("root certificate")
    }
}

/// [`CLIENTS`] clients ordering through `directory` until told to finish.
struct Load {
    seen: Arc<Seen>,
    phases: Arc<Phases>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(
        directory: &str,
        roots: &[u8],
        tokens: &Arc<Mutex<BTreeMap<String, (String, bool)>>>,
    ) -> Load {
        let seen = Arc::new(Seen::default());
        let phases = Arc::new(Phases::default());
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..CLIENTS)
            .map(|i| {
                tokio::spawn(client_loop(
                    directory.to_string(),
                    roots.to_vec(),
                    i,
                    tokens.clone(),
                    seen.clone(),
                    phases.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        Load {
            seen,
            phases,
            stop,
            clients,
        }
    }

    /// Stops placing new orders and waits for each client's current one.
    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.clients {
            c.await.unwrap();
        }
    }
}

/// Orders one name after another until `stop`, as a client that gives up on an order when the
/// server goes away and starts a new one.
async fn client_loop(
    gw_directory: String,
    roots: Vec<u8>,
    index: usize,
    tokens: Arc<Mutex<BTreeMap<String, (String, bool)>>>,
    seen: Arc<Seen>,
    phases: Arc<Phases>,
    stop: Arc<AtomicBool>,
) {
    let mut client: Option<Arc<AcmeClient>> = None;
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        if client.is_none() {
            client = register(&gw_directory, &roots).await.map(Arc::new);
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        let c = client.as_ref().unwrap();
        n += 1;
        let name = format!("c{index}-{n}.crash.example");
        // Every other order has a slow responder, so that kills find validations under way.
        if one_order(c, &name, n % 2 == 0, &tokens, &seen, &phases)
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn register(directory: &str, roots: &[u8]) -> Option<AcmeClient> {
    let key = AccountKey::generate(KeyAlg::Es256).ok()?;
    let mut c = AcmeClient::connect(directory, roots, key).await.ok()?;
    c.new_account(&[], None).await.ok()?;
    Some(c)
}

/// One order from newOrder to the downloaded certificate; an error (the server went away)
/// leaves it where it is.
async fn one_order(
    c: &Arc<AcmeClient>,
    name: &str,
    slow: bool,
    tokens: &Mutex<BTreeMap<String, (String, bool)>>,
    seen: &Seen,
    phases: &Phases,
) -> Result<(), String> {
    let err = |e: acmegate::client::ClientError| e.to_string();
    let ids = [Identifier::dns(name)];
    let reply = c
        .new_order(&ids, None)
        .await
        .map_err(err)?
        .ok()
        .map_err(err)?;
    let order_url = reply.location().ok_or("no Location")?;
    seen.orders
        .lock()
        .unwrap()
        .push((order_url.clone(), c.clone()));
    let order = reply.json().map_err(err)?;
    publish(c, &order, slow, tokens).await?;
    phases.validating.fetch_add(1, Ordering::SeqCst);
    let validated = c.authorize(&order, "http-01").await;
    phases.validating.fetch_sub(1, Ordering::SeqCst);
    validated.map_err(err)?;
    phases.finalizing.fetch_add(1, Ordering::SeqCst);
    let finished = finalize_and_download(c, &order_url, &order, seen).await;
    phases.finalizing.fetch_sub(1, Ordering::SeqCst);
    finished
}

/// Puts the key authorization of each of the order's http-01 challenges on the responder.
async fn publish(
    c: &AcmeClient,
    order: &Value,
    slow: bool,
    tokens: &Mutex<BTreeMap<String, (String, bool)>>,
) -> Result<(), String> {
    let thumbprint = acmegate::jws::thumbprint(c.key.jwk()).map_err(|e| e.to_string())?;
    for authz_url in order["authorizations"].as_array().into_iter().flatten() {
        let authz = c
            .post(authz_url.as_str().unwrap_or(""), None)
            .await
            .map_err(|e| e.to_string())?
            .json()
            .map_err(|e| e.to_string())?;
        for chall in authz["challenges"].as_array().into_iter().flatten() {
            if chall["type"] == "http-01" {
                let token = chall["token"].as_str().unwrap_or("").to_string();
                let key_authz = format!("{token}.{thumbprint}");
                tokens.lock().unwrap().insert(token, (key_authz, slow));
            }
        }
    }
    Ok(())
}

/// Finalizes a ready order (or one already finalized) and downloads its certificate.
async fn finalize_and_download(
    c: &AcmeClient,
    order_url: &str,
    order: &Value,
    seen: &Seen,
) -> Result<(), String> {
    let err = |e: acmegate::client::ClientError| e.to_string();
    let current = c
        .poll(order_url, Duration::from_secs(15))
        .await
        .map_err(err)?;
    if current["status"] == "ready" {
        let name = order["identifiers"][0]["value"].as_str().unwrap_or("");
        let (csr, _key) = csr_p256(&[Identifier::dns(name)]).map_err(err)?;
        c.post(
            order["finalize"].as_str().unwrap_or(""),
            Some(&json!({"csr": B64.encode(csr)})),
        )
        .await
        .map_err(err)?
        .ok()
        .map_err(err)?;
    }
    let done = c
        .poll(order_url, Duration::from_secs(15))
        .await
        .map_err(err)?;
    let cert_url = done["certificate"]
        .as_str()
        .ok_or_else(|| format!("order ended without a certificate: {done}"))?;
    let chain = c
        .post(cert_url, None)
        .await
        .map_err(err)?
        .ok()
        .map_err(err)?;
    let pem = String::from_utf8_lossy(&chain.body).into_owned();
    seen.downloaded
        .lock()
        .unwrap()
        .insert(order_url.to_string(), leaf_serial(&pem));
    Ok(())
}

/// Drives the order at `order_url` to its end as its client would on a retry, until
/// `deadline`; returns its last status (with the problem when not valid).
async fn settle(
    c: &AcmeClient,
    order_url: &str,
    tokens: &Mutex<BTreeMap<String, (String, bool)>>,
    seen: &Seen,
    deadline: Instant,
) -> String {
    let mut last = String::from("never read");
    while Instant::now() < deadline {
        let order = match c.post(order_url, None).await.and_then(|r| r.ok()) {
            Ok(reply) => reply.json().unwrap_or(Value::Null),
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let status = order["status"].as_str().unwrap_or("").to_string();
        let step = match status.as_str() {
            "valid" if seen.downloaded.lock().unwrap().contains_key(order_url) => return status,
            "invalid" => return format!("invalid: {}; {}", order["error"], why(c, &order).await),
            // The client may have died before publishing its answer: publish, then respond.
            "pending" => match publish(c, &order, false, tokens).await {
                Ok(()) => c
                    .authorize(&order, "http-01")
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            },
            _ => finalize_and_download(c, order_url, &order, seen).await,
        };
        last = match step {
            Ok(()) => status,
            Err(e) => format!("{status}: {e}"),
        };
    }
    last
}

/// The authorizations of a failed order, for the failure message.
async fn why(c: &AcmeClient, order: &Value) -> String {
    let mut found = Vec::new();
    for authz_url in order["authorizations"].as_array().into_iter().flatten() {
        if let Ok(reply) = c.post(authz_url.as_str().unwrap_or(""), None).await {
            found.push(String::from_utf8_lossy(&reply.body).into_owned());
        }
    }
    found.join("; ")
}

/// The leaf's serial as the store keeps it (lowercase hex).
fn leaf_serial(chain_pem: &str) -> String {
    let leaf = openssl::x509::X509::from_pem(chain_pem.as_bytes()).expect("leaf certificate");
    leaf.serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_lowercase()
        .trim_start_matches('0')
        .to_string()
}

async fn killed_under_load(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let dns = TestDnsServer::start().await.expect("test DNS server");
    let http_port = free_port();
    let tokens = responder(http_port).await;
    let database_url = match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => acmegate_testkit::db::fresh_postgres_url(),
    };
    let mut gw = Gateway::configured(&dir, &database_url, http_port, &dns, "");
    gw.start().await;
    let roots = gw.roots();

    let load = Load::start(&gw.directory(), &roots, &tokens);
    let (seen, phases) = (load.seen.clone(), load.phases.clone());
    let (mut caught_validating, mut caught_finalizing) = (0, 0);
    for _ in 0..KILLS {
        tokio::time::sleep(RUN).await;
        caught_validating += phases.validating.load(Ordering::SeqCst);
        caught_finalizing += phases.finalizing.load(Ordering::SeqCst);
        gw.signal("-KILL");
        gw.start().await;
    }
    tokio::time::sleep(RUN).await;
    load.finish().await;
    eprintln!(
        "killed {KILLS} times with {caught_validating} client(s) waiting on validation and \
         {caught_finalizing} on issuance"
    );
    assert!(
        caught_validating > 0,
        "no kill found a validation under way"
    );

    let orders = settle_all(&seen, &tokens).await;
    gw.signal("-TERM");
    let downloaded = stored_once_each(&seen, &store_url(&dir, &database_url));
    let log = std::fs::read_to_string(gw.log()).unwrap_or_default();
    let resumed = log.matches("resuming an interrupted validation").count();
    eprintln!(
        "{orders} orders, {downloaded} certificates downloaded, {resumed} validation(s) \
         resumed after a kill"
    );
    assert!(
        resumed > 0,
        "no validation was under way at a kill: the test proved nothing"
    );
    audit_intact(&dir);
}
crate::on_both_backends!(killed_under_load, killed_under_load);

/// Replicas: three `acmegate serve` processes on one PostgreSQL database (sharing the CA)
/// behind HAProxy, which passes each connection to a live replica. Under load, one replica is
/// killed with SIGKILL and stays dead: its clients reconnect through the balancer to the
/// others, which take over what it had leased (validations after 30 s, issuance jobs after
/// `issuance.lease_seconds`), and every order ends valid with one certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_behind_the_balancer() {
    let tmp = tempfile::tempdir().unwrap();
    let dns = TestDnsServer::start().await.expect("test DNS server");
    let http_port = free_port();
    let tokens = responder(http_port).await;
    let database_url = acmegate_testkit::db::fresh_postgres_url();
    let front = free_port();
    // Every replica names the balancer in its URLs and reads the one CA key secret.
    let extra =
        format!("base_url = \"https://localhost:{front}\"\n[issuance]\nlease_seconds = 5\n");
    let mut replicas: Vec<Gateway> = (0..3)
        .map(|i| {
            let dir = tmp.path().join(format!("replica{i}"));
            let gw = Gateway::configured(&dir, &database_url, http_port, &dns, &extra);
            let shared = tmp.path().join("secrets");
            std::fs::create_dir_all(&shared).unwrap();
            std::os::unix::fs::symlink(&shared, dir.join("secrets")).unwrap();
            gw
        })
        .collect();
    replicas[0].start().await;
    for replica in &mut replicas[1..] {
        copy_dir(
            &tmp.path().join("replica0/data/ca"),
            &replica.dir.join("data/ca"),
        );
        replica.start().await;
    }
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let _lb = crate::replicas::Haproxy::start_tcp(tmp.path(), front, &ports);
    let roots = replicas[0].roots();

    let load = Load::start(
        &format!("https://localhost:{front}/acme/directory"),
        &roots,
        &tokens,
    );
    let seen = load.seen.clone();
    tokio::time::sleep(RUN).await;
    // The victim is a replica other than the first that holds validation leases when it is
    // killed, so that the others have its work to take over. A candidate is frozen (SIGSTOP)
    // before its leases are counted: a running replica finishes a validation in milliseconds,
    // so a count taken while it runs is stale by the time the kill lands.
    let (victim, leases) = 'found: loop {
        for (i, candidate) in replicas.iter().enumerate().skip(1) {
            candidate.send("-STOP");
            let owner = candidate.owner();
            let held = leased_validations(&database_url)
                .iter()
                .filter(|o| **o == owner)
                .count();
            if held > 0 {
                break 'found (i, held);
            }
            candidate.send("-CONT");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let before_kill = seen.downloaded.lock().unwrap().len();
    replicas[victim].signal("-KILL");
    tokio::time::sleep(RUN * 2).await;
    load.finish().await;
    let attempted = seen.orders.lock().unwrap().len();
    let during_load = seen.downloaded.lock().unwrap().len();
    let settled = settle_all(&seen, &tokens).await;
    let downloaded = stored_once_each(&seen, &database_url);
    eprintln!(
        "3 replicas, one killed holding {leases} validation lease(s): {attempted} orders \
         attempted, {before_kill} done before the kill, {during_load} done under load, {} \
         finished on a retry, {settled} valid, 0 failed, {downloaded} certificates, one per \
         order",
        settled - during_load
    );
    let taken_over: usize = (0..replicas.len())
        .filter(|&i| i != victim)
        .map(|i| {
            let r = &replicas[i];
            std::fs::read_to_string(r.log())
                .unwrap_or_default()
                .matches("resuming an interrupted validation")
                .count()
        })
        .sum();
    eprintln!("{taken_over} validation(s) of the dead replica taken over by the others");
    assert!(
        taken_over > 0,
        "the others took over none of the dead replica's validations"
    );
    for replica in &mut replicas {
        if replica.child.is_some() {
            replica.signal("-TERM");
        }
    }
    audit_intact(&replicas[0].dir);
}

/// The lease owners of the validations under way on the database at `url`, one per job.
fn leased_validations(url: &str) -> Vec<String> {
    let out = Command::new("psql")
        .args(["-At", url, "-c", "SELECT lease_owner FROM validation_jobs"])
        .output()
        .expect("psql runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Copies the files of `from` (one level: the CA's) into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Every order the clients started settles valid (each client finishes what it started, as on
/// a retry; the gateway finishes on its own what it had under way); returns how many.
async fn settle_all(seen: &Seen, tokens: &Mutex<BTreeMap<String, (String, bool)>>) -> usize {
    let orders = seen.orders.lock().unwrap().clone();
    let started = Instant::now();
    let mut unsettled = BTreeMap::new();
    for (order_url, c) in &orders {
        let status = settle(c, order_url, tokens, seen, started + SETTLE).await;
        if status != "valid" {
            unsettled.insert(order_url.clone(), status);
        }
    }
    eprintln!("{} orders settled in {:?}", orders.len(), started.elapsed());
    assert!(
        unsettled.is_empty(),
        "orders that did not end valid: {unsettled:?}"
    );
    orders.len()
}

/// The store at `url` has every certificate a client downloaded, one certificate per order,
/// and no serial twice; returns how many were downloaded.
fn stored_once_each(seen: &Seen, url: &str) -> usize {
    let orders = seen.orders.lock().unwrap().clone();
    let downloaded = seen.downloaded.lock().unwrap().clone();
    let store = acmegate::store::Store::open(url).unwrap();
    for (order_url, serial) in &downloaded {
        let cert = store
            .certificate_by_serial(serial)
            .unwrap_or_else(|e| panic!("downloaded certificate {serial} is not stored: {e}"));
        assert_eq!(cert.order_id.as_deref(), Some(order_id(order_url)));
    }
    let mut serials = BTreeSet::new();
    for (order_url, _) in &orders {
        let certs = store.certificates_of_order(order_id(order_url)).unwrap();
        assert_eq!(
            certs.len(),
            1,
            "order {order_url} has {} certificates",
            certs.len()
        );
        assert!(serials.insert(certs[0].serial.clone()), "serial repeated");
    }
    downloaded.len()
}

/// `acmegate audit verify`, run in `dir` as an operator would, finds the chain intact.
fn audit_intact(dir: &Path) {
    let verified = Command::new(BIN)
        .args(["audit", "verify"])
        .current_dir(dir)
        .env_remove("ACMEGATE_CONFIG")
        .env("ACMEGATE_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && text.contains("intact"),
        "audit verify ({}): {text} {}",
        verified.status,
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// The order's id: the last segment of its URL.
fn order_id(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The database the gateway in `dir` used.
fn store_url(dir: &Path, database_url: &str) -> String {
    if database_url.is_empty() {
        format!("sqlite://{}", dir.join("data/acmegate.db").display())
    } else {
        database_url.to_string()
    }
}

/// A managed certificate's round killed with SIGKILL between issuance and deployment: the
/// certificate and its sealed key were stored in one transaction before the deployer ran, so
/// the process started again (once the dead one's lease ran out) deploys that same
/// certificate: nothing is issued twice, nothing is stuck, the audit chain is intact.
async fn managed_round_killed_mid_deployment(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let dns = TestDnsServer::start().await.expect("test DNS server");
    let database_url = match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => acmegate_testkit::db::fresh_postgres_url(),
    };
    // A target whose first push hangs long enough for the kill to land inside the round.
    let pushes = Arc::new(Mutex::new(Vec::<Value>::new()));
    let log = pushes.clone();
    let target = http_peer(move |request| {
        if request.method == "POST" {
            let push: Value = serde_json::from_slice(&request.body).expect("JSON push");
            let first = {
                let mut log = log.lock().unwrap();
                log.push(push);
                log.len() == 1
            };
            if first {
                std::thread::sleep(Duration::from_secs(5));
            }
            return (200, json!({"installed": true}).to_string());
        }
        match log.lock().unwrap().last() {
            Some(push) => (200, json!({"serial": push["serial"]}).to_string()),
            None => (404, String::new()),
        }
    })
    .await;
    let extra = format!(
        r#"[issuance]
lease_seconds = 3
[[plugins]]
name = "push"
kind = "target-deployer"
file = "{}"
[plugins.config]
timeout_ms = 10000
[plugins.grants]
http_hosts = ["127.0.0.1"]
http_plain = true
http_private = true
[[targets]]
name = "edge"
deployer = "push"
names = []
attempts = 3
[targets.config]
url = "http://127.0.0.1:{target}/certificate"
[[managed]]
name = "web"
names = ["web.example.internal"]
targets = ["edge"]
"#,
        plugin_component("http-push-deployer").display()
    );
    let mut gw = Gateway::configured(&dir, &database_url, free_port(), &dns, &extra);
    gw.start().await;
    let first = eventually("the first push", || {
        pushes.lock().unwrap().first().map(|p| p["serial"].clone())
    })
    .await;
    gw.signal("-KILL");

    let url = store_url(&dir, &database_url);
    let store = acmegate::store::Store::open(&url).unwrap();
    let cut = store.managed_certificate("web").unwrap();
    assert_eq!(cut.certificate_serial.as_deref(), first.as_str());
    assert_eq!(
        cut.deployed_serial, None,
        "killed before the round was recorded"
    );

    gw.start().await;
    let again = eventually("a push after the restart", || {
        pushes.lock().unwrap().get(1).map(|p| p["serial"].clone())
    })
    .await;
    assert_eq!(
        again, first,
        "the stored certificate is deployed, not a new one"
    );
    let mut deployed = None;
    for _ in 0..100 {
        deployed = store.managed_certificate("web").unwrap().deployed_serial;
        if deployed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deployed.as_deref(), first.as_str());
    gw.signal("-TERM");
    let managed = acmegate::store::CertificateFilter {
        origin: Some("managed".into()),
        ..Default::default()
    };
    let issued = store
        .list_certificates(&managed, acmegate::store::PageRequest::first(10))
        .unwrap();
    assert_eq!(issued.total, 1, "issued once across the kill");
    audit_intact(&dir);
}
crate::on_both_backends!(
    managed_round_killed_mid_deployment,
    managed_round_killed_mid_deployment
);
