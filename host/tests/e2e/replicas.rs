//! Replicas of one gateway on one PostgreSQL database behind a real load balancer: Debian's
//! HAProxy, started by the test on loopback, terminating TLS with a certificate of the
//! gateway's CA and balancing every request round-robin (no stickiness, no connection reuse),
//! so consecutive requests of one client land on different replicas. RFC 8555 §6.5: a nonce
//! one replica issued is accepted once by whichever replica gets it, and refused everywhere
//! after.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acmegate::acme::{Identifier, ProblemType};
use acmegate::admin::Role;
use base64::Engine;
use serde_json::json;

use crate::admin_api::{allowlist_policy, call, identity, Identity};
use crate::certbot::certbot_http_cycle;
use crate::lego::lego_http_cycle;
use crate::support::{account, free_port, http01_serve, run, serial, Backend, Harness};

/// HAProxy as a child process; killed when dropped.
pub(crate) struct Haproxy {
    child: std::process::Child,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    /// Listens on 127.0.0.1:`front` with the certificate and key in `bundle` (PEM) and sends
    /// each request to the next of `replicas` (TLS, whose certificates it does not check: the
    /// test's client checks the front's).
    fn start(dir: &Path, front: u16, replicas: &[u16], bundle: &Path) -> Haproxy {
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, port)| format!("    server r{i} 127.0.0.1:{port} ssl verify none\n"))
            .collect();
        Self::run(
            dir,
            front,
            &format!(
                "defaults\n    mode http\n    option http-server-close\n\
                 \x20   timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
                 frontend acme\n    bind 127.0.0.1:{front} ssl crt {}\n    default_backend replicas\n\
                 backend replicas\n    balance roundrobin\n{servers}",
                bundle.display()
            ),
        )
    }

    /// Listens on 127.0.0.1:`front` and passes each TCP connection (TLS and all) to the next
    /// of `replicas` that is up: a replica that stops answering is out within 200 ms, and a
    /// connection refused by it is sent to another.
    pub(crate) fn start_tcp(dir: &Path, front: u16, replicas: &[u16]) -> Haproxy {
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, port)| {
                format!("    server r{i} 127.0.0.1:{port} check inter 200ms fall 1 rise 2\n")
            })
            .collect();
        Self::run(
            dir,
            front,
            &format!(
                "defaults\n    mode tcp\n    option redispatch\n    retries 3\n\
                 \x20   timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n\
                 frontend acme\n    bind 127.0.0.1:{front}\n    default_backend replicas\n\
                 backend replicas\n    balance roundrobin\n{servers}"
            ),
        )
    }

    fn run(dir: &Path, front: u16, sections: &str) -> Haproxy {
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, format!("global\n    maxconn 512\n{sections}"))
            .expect("write haproxy.cfg");
        let child = std::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("haproxy runs (Debian package haproxy; .ci/run installs it)");
        let lb = Haproxy { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, front)).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {front}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        lb
    }
}

/// A replica's own `/metrics`, fetched from it directly.
async fn metrics(root: &Path, port: u16) -> String {
    let out = run(
        tokio::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(root)
            .arg(format!("https://localhost:{port}/metrics")),
        "curl /metrics",
    )
    .await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The responses a replica counted with `status`.
async fn responses_with_status(root: &Path, port: u16, status: u16) -> u64 {
    metrics(root, port)
        .await
        .lines()
        .filter(|l| {
            l.starts_with("acmegate_http_requests_total")
                && l.contains(&format!("status=\"{status}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Two replicas on one PostgreSQL database and data directory (one CA), behind HAProxy.
struct Cluster {
    /// The first replica; its `directory()` is the balancer's.
    h: Harness,
    other: acmegate::server::Running,
    ports: [u16; 2],
    _lb: Haproxy,
}

async fn cluster() -> Cluster {
    cluster_with(|_| {}).await
}

/// [`cluster`] with both replicas' configuration changed by `tweak`.
async fn cluster_with(tweak: impl FnOnce(&mut acmegate::config::Config)) -> Cluster {
    let (front, a, b) = (free_port(), free_port(), free_port());
    let h = Harness::start_with(Backend::Postgres, |c| {
        c.server.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, a));
        c.server.base_url = format!("https://localhost:{front}");
        tweak(c);
    })
    .await;
    let mut config = h.gw.gateway.config.clone();
    config.server.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, b));
    let other = acmegate::server::start(config, None)
        .await
        .expect("second replica starts");
    let (chain, key) =
        h.gw.gateway
            .ca
            .issue_tls_server(&["localhost".to_string()])
            .expect("front certificate");
    let bundle: PathBuf = h.path("front.pem");
    std::fs::write(
        &bundle,
        chain
            .iter()
            .map(|der| acmegate::ca::pem("CERTIFICATE", der))
            .collect::<String>()
            + &acmegate::ca::pem("PRIVATE KEY", &key),
    )
    .unwrap();
    let lb = Haproxy::start(h.dir.path(), front, &[a, b], &bundle);
    Cluster {
        h,
        other,
        ports: [a, b],
        _lb: lb,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_are_good_once_on_any_replica() {
    let cluster = cluster().await;
    let h = &cluster.h;
    let c = account(h).await;
    let url = c.url("newOrder").unwrap();
    let kid = c.kid.clone().unwrap();
    // Each nonce comes from one replica and is spent on the next: every request is 201.
    for i in 0..6 {
        let payload =
            json!({"identifiers": [{"type": "dns", "value": format!("n{i}.replicas.test")}]});
        let header =
            json!({"alg": "ES256", "kid": kid, "nonce": c.nonce().await.unwrap(), "url": url});
        let body = c.key.sign(&header, payload.to_string().as_bytes());
        let r = c
            .post_raw(&url, body.clone(), "application/jose+json")
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        // The same nonce again, on the other replica and then on the first: refused on both.
        for _ in 0..2 {
            let again = c
                .post_raw(&url, body.clone(), "application/jose+json")
                .await
                .unwrap();
            assert_eq!(
                again.problem().map(|p| p.kind),
                Some(ProblemType::BadNonce),
                "a replayed nonce was accepted"
            );
        }
    }
    // Both replicas answered newOrder, so nonces did cross.
    for port in cluster.ports {
        let text = metrics(&h.root_pem, port).await;
        assert!(
            text.contains("acmegate_http_requests_total{route=\"/acme/new-order\",status=\"201\"}"),
            "replica on {port} served no newOrder:\n{text}"
        );
    }
    cluster.other.shutdown().await;
}

/// lego and certbot issue with real http-01 (validated by whichever replica gets the
/// challenge), renew and revoke through the balancer, and no replica ever answered `badNonce`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_clients_see_one_server() {
    let cluster = cluster().await;
    let h = &cluster.h;
    lego_http_cycle(h, "web.replicas.test").await;
    certbot_http_cycle(h, "www.replicas.test").await;
    for port in cluster.ports {
        let bad = responses_with_status(&h.root_pem, port, 400).await;
        assert_eq!(
            bad, 0,
            "replica on {port} answered 400 (badNonce?) {bad} times"
        );
    }
    cluster.other.shutdown().await;
}

/// One database, one CA: a replica whose data directory holds no CA refuses to start on a
/// database another CA is pinned to (and creates nothing), and so does one with a CA of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ca_for_one_database_is_refused() {
    let h = Harness::start(Backend::Postgres).await;
    let (root, _) = h.gw.gateway.ca.fingerprints();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut config = h.gw.gateway.config.clone();
    config.data_dir = elsewhere.path().join("data");
    config.server.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.admin.listen = "127.0.0.1:0".into();

    let err = acmegate::server::start(config.clone(), None)
        .await
        .map(|_| ())
        .expect_err("a replica without the CA started");
    let text = format!("{err:#}");
    assert!(text.contains("holds no CA"), "{text}");
    assert!(
        text.contains(&root),
        "the message names the database's CA: {text}"
    );
    assert!(
        !config.data_dir.join("ca").join("root.pem").exists(),
        "a second CA was created"
    );

    // A CA of its own (made on a database of its own) is refused too.
    let mut own = config.clone();
    own.database_url = String::new();
    let alone = acmegate::server::start(own, None)
        .await
        .expect("its own PKI");
    let (own_root, _) = alone.gateway.ca.fingerprints();
    alone.shutdown().await;
    let err = acmegate::server::start(config, None)
        .await
        .map(|_| ())
        .expect_err("a replica with another CA started");
    let text = format!("{err:#}");
    assert!(text.contains("is not the CA of the database"), "{text}");
    assert!(text.contains(&root) && text.contains(&own_root), "{text}");
    h.gw.shutdown().await;
}

/// Every serial a CRL (DER, from `url`) lists, lower-case hex without leading zeros.
async fn crl_serials(root: &Path, url: &str, file: &Path) -> Vec<String> {
    run(
        tokio::process::Command::new("curl")
            .args(["-sS", "-o"])
            .arg(file)
            .arg("--cacert")
            .arg(root)
            .arg(url),
        "curl the CRL",
    )
    .await;
    let text = run(
        tokio::process::Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(file),
        "openssl crl",
    )
    .await;
    String::from_utf8_lossy(&text.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number:"))
        .map(|s| {
            s.trim()
                .to_ascii_lowercase()
                .trim_start_matches('0')
                .to_string()
        })
        .collect()
}

/// A revocation through the balancer reaches the CRL of every replica within a second or two,
/// although each had just built and cached its CRL (which it would otherwise serve for five
/// minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_replicas_crl_at_once() {
    let cluster = cluster().await;
    let h = &cluster.h;
    let c = account(h).await;
    let thumbprint = acmegate::jws::thumbprint(c.key.jwk()).unwrap();
    http01_serve(h.http_port, move |token| {
        Some((format!("{token}.{thumbprint}"), Duration::ZERO))
    })
    .await;
    let (_, chain) = c
        .issue(&[Identifier::dns("gone.replicas.test")], "http-01", None)
        .await
        .expect("issued through the balancer");
    let pem_file = h.path("gone.pem");
    std::fs::write(&pem_file, &chain).unwrap();
    let serial = serial(&pem_file);
    let crl_of = |port: u16| format!("https://localhost:{port}/ca/crl.der");
    for port in cluster.ports {
        let listed = crl_serials(&h.root_pem, &crl_of(port), &h.path("crl.der")).await;
        assert!(!listed.contains(&serial), "listed before the revocation");
    }
    let der = openssl::x509::X509::from_pem(chain.as_bytes())
        .and_then(|x| x.to_der())
        .unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der);
    let revoked = c
        .post(
            &c.url("revokeCert").unwrap(),
            Some(&json!({"certificate": b64})),
        )
        .await
        .unwrap();
    assert_eq!(
        revoked.status,
        200,
        "{}",
        String::from_utf8_lossy(&revoked.body)
    );
    let started = Instant::now();
    for port in cluster.ports {
        loop {
            let listed = crl_serials(&h.root_pem, &crl_of(port), &h.path("crl.der")).await;
            if listed.contains(&serial) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "replica on {port} still serves a CRL without {serial}: {listed:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!(
        "both replicas listed the serial {:?} after the revocation",
        started.elapsed()
    );
    // Their metrics agree: one CA, one revocation.
    let (root, _) = h.gw.gateway.ca.fingerprints();
    for port in cluster.ports {
        let text = metrics(&h.root_pem, port).await;
        assert!(
            text.contains(&format!("acmegate_ca_info{{root_sha256=\"{root}\"}} 1")),
            "{text}"
        );
        assert!(text.contains("acmegate_revocations_recorded 1"), "{text}");
    }
    cluster.other.shutdown().await;
}

/// Whether replica `gw` lets the plugin `name` serve.
fn enabled(gw: &acmegate::server::Running, name: &str) -> bool {
    gw.gateway
        .plugins
        .as_ref()
        .expect("plugins configured")
        .is_enabled(name)
}

/// Waits (up to 5 s) until replica `gw` has the plugin `name` switched `on`.
async fn until_switched(gw: &acmegate::server::Running, name: &str, on: bool) {
    let started = Instant::now();
    while enabled(gw, name) != on {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the other replica did not follow the switch to {on}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Switches the plugin `allow` through the admin API of `h`'s replica and waits until the
/// `other` replica follows.
async fn switch(h: &Harness, admin: &Identity, other: &acmegate::server::Running, on: bool) {
    let path = format!(
        "/api/v1/plugins/allow/{}",
        if on { "enable" } else { "disable" }
    );
    call(h, Some(admin), "POST", &path, None, 200).await;
    until_switched(other, "allow", on).await;
}

/// An admin's plugin switch on one replica holds on the other within a second or two, and
/// after the other restarts; newOrder through the balancer follows it (the order policy fails
/// closed while off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_switches_hold_on_every_replica_and_across_restarts() {
    let file = tempfile::tempdir().unwrap();
    let plugin = file.path().join("allow.wasm");
    std::fs::copy(
        crate::support::plugin_component("allowlist-validator"),
        &plugin,
    )
    .unwrap();
    let mut cluster = cluster_with(move |c| allowlist_policy(c, plugin)).await;
    let h = &cluster.h;
    let admin = identity(h, "ops", Role::Admin).await;
    let acme = account(h).await;
    let order = |name: String| {
        let acme = &acme;
        async move {
            acme.new_order(&[Identifier::dns(&name)], None)
                .await
                .unwrap()
                .status
        }
    };
    assert_eq!(order("a.allowed.test".into()).await, 201);

    switch(h, &admin, &cluster.other, false).await;
    for i in 0..4 {
        assert_eq!(
            order(format!("off{i}.allowed.test")).await,
            500,
            "while disabled"
        );
    }
    // The other replica restarts: the switch is read from the database at start.
    let config = cluster.other.gateway.config.clone();
    cluster.other.shutdown().await;
    cluster.other = acmegate::server::start(config, None)
        .await
        .expect("the replica restarts");
    assert!(
        !enabled(&cluster.other, "allow"),
        "switched back on by a restart"
    );

    switch(h, &admin, &cluster.other, true).await;
    for i in 0..4 {
        assert_eq!(
            order(format!("on{i}.allowed.test")).await,
            201,
            "enabled again"
        );
    }
    cluster.other.shutdown().await;
}

/// A load run through the balancer (`acmegate bench`'s load generator, every request to the
/// next replica) completes every order, and no replica answers 400 (`badNonce` or other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_through_the_balancer_has_no_errors() {
    let cluster = cluster_with(|c| c.acme.auto_approve = true).await;
    let h = &cluster.h;
    let roots = std::fs::read(&h.root_pem).unwrap();
    let opts = acmegate::bench::BenchOptions {
        orders: 60,
        duration: None,
        concurrency: 6,
        directory: Some(h.directory()),
        ca_cert: Some(h.root_pem.clone()),
        server_pid: None,
        database_url: None,
        pebble: false,
        key_alg: acmegate::client::KeyAlg::Es256,
        order_timeout_secs: 20,
    };
    let report = acmegate::bench::run_load("balancer", &h.directory(), &roots, &opts)
        .await
        .expect("the load runs");
    eprintln!("{}", report.line());
    assert_eq!((report.orders, report.errors), (60, 0), "{}", report.line());
    for port in cluster.ports {
        let bad = responses_with_status(&h.root_pem, port, 400).await;
        assert_eq!(bad, 0, "replica on {port} answered 400 {bad} times");
    }
    cluster.other.shutdown().await;
}
