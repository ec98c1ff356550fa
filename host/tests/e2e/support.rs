//! Test harness: starts a gateway (SQLite or PostgreSQL) with a test DNS server as its
//! resolver, and helpers to run external clients and check what they got.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use acmegate::authority::Clock;
use acmegate::config::Config;
use acmegate::server::{self, Running};
use acmegate_testkit::dns::TestDnsServer;

/// Which database backs the gateway under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running gateway plus what tests need around it.
pub struct Harness {
    pub gw: Running,
    pub dns: TestDnsServer,
    pub dir: tempfile::TempDir,
    /// The gateway's root certificate, as clients must trust it.
    pub root_pem: PathBuf,
    /// Where hook scripts publish dns-01 TXT values (one file per name).
    pub txt_dir: PathBuf,
    /// Port the gateway's http-01 validation connects to (clients listen there).
    pub http_port: u16,
    /// Port the gateway's tls-alpn-01 validation connects to.
    pub tls_port: u16,
}

/// Adds a `short` profile (12-hour certificates) beside the default one.
pub fn with_short_profile(c: &mut Config) {
    let short = acmegate::ca::Profile {
        name: "short".into(),
        validity_hours: 12,
        ..acmegate::ca::Profile::default_server()
    };
    c.profiles = vec![acmegate::ca::Profile::default_server(), short];
}

/// A port that was free a moment ago, never one a socket bound to port 0 can be given
/// ([`acmegate::bench::ports`]).
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `n` consecutive ports that were free a moment ago.
pub fn free_ports(n: u16) -> u16 {
    acmegate::bench::ports::free_ports(n).expect("free ports on 127.0.0.1")
}

impl Harness {
    pub async fn start(backend: Backend) -> Harness {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let txt_dir = dir.path().join("txt");
        std::fs::create_dir_all(&txt_dir).expect("txt dir");
        let dns = TestDnsServer::start()
            .await
            .expect("test DNS server starts")
            .with_txt_dir(&txt_dir);
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.ca.key_file = dir.path().join("secrets/ca.key");
        config.server.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        config.validation.http01_port = free_port();
        config.validation.tlsalpn01_port = free_port();
        config.validation.dns_resolver = dns.addr().to_string();
        config.validation.timeout_seconds = 5;
        // The admin API on an ephemeral port, so that tests can run side by side.
        config.admin.listen = "127.0.0.1:0".into();
        if backend == Backend::Postgres {
            config.database_url = acmegate_testkit::db::fresh_postgres_url();
        }
        tweak(&mut config);
        let http_port = config.validation.http01_port;
        let tls_port = config.validation.tlsalpn01_port;
        // Time runs as usual; a test moves it ahead (`h.clock().advance`) instead of sleeping.
        let gw = server::start_at(config, None, Clock::shifted())
            .await
            .expect("gateway starts");
        let root_pem = dir.path().join("root.pem");
        std::fs::write(&root_pem, gw.gateway.ca.root_pem()).expect("write root");
        Harness {
            gw,
            dns,
            dir,
            root_pem,
            txt_dir,
            http_port,
            tls_port,
        }
    }

    /// Stops the gateway (requests in flight finish), runs `while_down`, then starts a new one
    /// on `config` with the same data directory, DNS server and validation ports: a restart.
    pub async fn restart(self, config: Config, while_down: impl FnOnce()) -> Harness {
        let clock = self.clock().clone();
        self.gw.shutdown().await;
        while_down();
        Harness {
            gw: server::start_at(config, None, clock)
                .await
                .expect("gateway restarts"),
            ..self
        }
    }

    /// The gateway's clock, which a test moves ahead instead of waiting.
    pub fn clock(&self) -> &Clock {
        &self.gw.gateway.clock
    }

    pub fn directory(&self) -> String {
        self.gw.directory_url()
    }

    /// A path inside the test's temporary directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes an executable shell script and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path(name);
        std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }
}

/// Runs a command to completion within two minutes; the process dies with the test.
pub async fn output_within(cmd: &mut tokio::process::Command, what: &str) -> Output {
    cmd.kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} timed out"))
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"))
}

/// Runs a command with a deadline and returns its output; panics with stdout/stderr on
/// failure so that a red test shows what the client said.
pub async fn run(cmd: &mut tokio::process::Command, what: &str) -> Output {
    let out = output_within(cmd, what).await;
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs a command that must fail, and returns its stdout and stderr together.
pub async fn run_failing(cmd: &mut tokio::process::Command, what: &str) -> String {
    let out = output_within(cmd, what).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "{what} succeeded but must fail:\n{text}"
    );
    text
}

/// Checks a PEM chain with openssl against the gateway's root: leaf first, intermediates after.
pub fn verify_chain(root_pem: &Path, chain_pem: &Path) {
    let text = std::fs::read_to_string(chain_pem).expect("read chain");
    let blocks: Vec<&str> = text
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN"))
        .collect();
    assert!(
        blocks.len() >= 2,
        "chain must hold leaf and intermediate, got {}",
        blocks.len()
    );
    let dir = chain_pem.parent().expect("parent");
    let leaf = dir.join("verify-leaf.pem");
    let untrusted = dir.join("verify-untrusted.pem");
    std::fs::write(&leaf, blocks[0].trim()).expect("write leaf");
    std::fs::write(&untrusted, blocks[1..].concat().trim()).expect("write rest");
    let out = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(root_pem)
        .arg("-untrusted")
        .arg(&untrusted)
        .arg(&leaf)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(": OK"),
        "openssl verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The DNS and IP SANs of a PEM certificate, via openssl.
pub fn sans(cert_pem: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(cert_pem)
        .output()
        .expect("openssl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The serial of a PEM certificate as lower-case hex without leading zeros.
pub fn serial(cert_pem: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert_pem)
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// The cargo target directory, where tools and test outputs (screenshots) live: the same as
/// the plugins' (plugin_component).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| acmegate_plugin_build::workspace_root().join("target"))
}

/// The tool folder `name` that `script` (in tests/e2e: a Python venv, see pypi_venv.sh, or
/// playwright-core, see playwright.sh) makes under `$CARGO_TARGET_DIR/tools`, created on first
/// use (once per test process and script). Panics when it cannot: a test without its real
/// counterpart must fail, not pass or skip.
pub fn installed_tool(script: &str, name: &str) -> PathBuf {
    static MADE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let target = target_dir();
    let venv = target.join("tools").join(name);
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if made.iter().any(|s| s == script) {
        return venv;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(script);
    let out = std::process::Command::new(&path)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} failed ({}): the test needs what it installs\n{}{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    made.push(script.to_string());
    venv
}

/// Looks the certificate up in the gateway's store and returns its status.
pub async fn stored_status(h: &Harness, serial: &str) -> String {
    let store = h.gw.gateway.store.clone();
    let serial = serial.to_string();
    tokio::task::spawn_blocking(move || store.certificate_by_serial(&serial))
        .await
        .expect("join")
        .expect("certificate is in the store")
        .status
        .to_string()
}

/// Declares a test body once and runs it on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body($crate::support::Backend::Postgres).await
            }
        }
    };
}

/// A minimal http-01 responder on 127.0.0.1:`port`: serves the key authorizations put in the
/// returned map at `/.well-known/acme-challenge/<token>`, 404 otherwise.
pub async fn http01_responder(
    port: u16,
) -> std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>> {
    let tokens = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        String,
    >::new()));
    let map = tokens.clone();
    http01_serve(port, move |token| {
        map.lock()
            .unwrap()
            .get(token)
            .map(|body| (body.clone(), Duration::ZERO))
    })
    .await;
    tokens
}

/// An http-01 responder on 127.0.0.1:`port` that answers the token in each request's path
/// with what `answer` gives (the body, and how long to wait before sending it), 404 when it
/// gives nothing.
pub async fn http01_serve(
    port: u16,
    answer: impl Fn(&str) -> Option<(String, Duration)> + Send + Sync + 'static,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .expect("bind http-01 port");
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = req.split_whitespace().nth(1).unwrap_or("");
                let found = path
                    .strip_prefix("/.well-known/acme-challenge/")
                    .and_then(|t| answer(t));
                let resp = match found {
                    Some((b, delay)) => {
                        tokio::time::sleep(delay).await;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                            b.len()
                        )
                    }
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_string()
                    }
                };
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
}

/// A client for the harness's gateway with a fresh account key of `alg`, not yet registered.
pub async fn client(h: &Harness, alg: acmegate::client::KeyAlg) -> acmegate::client::AcmeClient {
    let key = acmegate::client::AccountKey::generate(alg).expect("key");
    let roots = std::fs::read(&h.root_pem).expect("root");
    acmegate::client::AcmeClient::connect(&h.directory(), &roots, key)
        .await
        .expect("client connects")
}

/// A registered client.
pub async fn account(h: &Harness) -> acmegate::client::AcmeClient {
    let mut c = client(h, acmegate::client::KeyAlg::Es256).await;
    c.new_account(&["mailto:ops@example.org"], None)
        .await
        .expect("account");
    c
}

/// The built component of the plugin `name` (plugins/ and examples/), building all the Rust
/// ones once per test run. An example in another language (`examples/<name>/build.sh`, e.g.
/// the componentize-py one) is built by its script on first use; the script skips the build
/// when its output is up to date.
pub fn plugin_component(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    static SCRIPTS_RUN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let workspace = acmegate_plugin_build::workspace_root();
    let out_dir = DIR.get_or_init(|| {
        let options = acmegate_plugin_build::Options::for_workspace(&workspace);
        acmegate_plugin_build::build_all(&options)
            .unwrap_or_else(|e| panic!("building the plugins failed: {e}"));
        options.out_dir
    });
    let script = workspace.join("examples").join(name).join("build.sh");
    if script.is_file() {
        let mut done = SCRIPTS_RUN.lock().unwrap_or_else(|e| e.into_inner());
        if !done.iter().any(|n| n == name) {
            let status = std::process::Command::new(&script)
                .arg("--out")
                .arg(out_dir)
                .status()
                .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
            assert!(status.success(), "{} failed: {status}", script.display());
            done.push(name.to_string());
        }
    }
    out_dir.join(format!("{name}.wasm"))
}

/// Waits (up to 15 s) until the order has left `processing`, and returns it.
pub async fn wait_settled(
    store: &acmegate::store::Store,
    order_id: &str,
) -> acmegate::store::Order {
    wait_settled_within(store, order_id, Duration::from_secs(15)).await
}

/// Waits (up to `bound`) until the order has left `processing`, and returns it.
pub async fn wait_settled_within(
    store: &acmegate::store::Store,
    order_id: &str,
    bound: Duration,
) -> acmegate::store::Order {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let (s, id) = (store.clone(), order_id.to_string());
        let order = tokio::task::spawn_blocking(move || s.order(&id))
            .await
            .expect("join")
            .expect("order");
        if order.status != "processing" {
            return order;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("order {order_id} is still processing after {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request a test HTTP peer received.
#[derive(Clone, Debug)]
pub struct PeerRequest {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// A minimal HTTP/1.1 server on 127.0.0.1 standing in for a service plugins talk to (a
/// webhook, a deployment target): `answer` turns each request into a status and a body. One
/// request per connection. Returns the port.
pub async fn http_peer(
    answer: impl Fn(PeerRequest) -> (u16, String) + Send + Sync + 'static,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind a test HTTP peer");
    let port = listener.local_addr().unwrap().port();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                let (head, body) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break (head, buf[end + 4..end + 4 + length].to_vec());
                    }
                };
                let mut words = head.split_whitespace();
                let request = PeerRequest {
                    method: words.next().unwrap_or_default().to_string(),
                    path: words.next().unwrap_or_default().to_string(),
                    body,
                };
                let (status, body) = answer(request);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

/// Waits (up to 10 s) for `found` to give a value.
pub async fn eventually<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = found() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits (up to 10 s) for a JSON value in `received` whose `key` is `value`, and returns it.
pub async fn arrived(
    received: &std::sync::Mutex<Vec<serde_json::Value>>,
    key: &str,
    value: &str,
) -> serde_json::Value {
    eventually(&format!("{key} = {value}"), || {
        received
            .lock()
            .unwrap()
            .iter()
            .find(|v| v[key] == value)
            .cloned()
    })
    .await
}

/// The window renewalInfo (RFC 9773) suggests for `chain`, which must answer 200: (start,
/// end, the body).
pub async fn suggested_window(
    c: &acmegate::client::AcmeClient,
    chain: &str,
) -> (i64, i64, serde_json::Value) {
    let reply = c.renewal_info(chain).await.unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.problem());
    let body = reply.json().unwrap();
    let time = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(body["suggestedWindow"][k].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    (time("start"), time("end"), body)
}
