//! Clients that hold on and a database that stops taking writes: slow headers and bodies are
//! cut off after `server.client_timeout_seconds`, connections past `server.max_connections`
//! wait for a free one, and `/ready` answers 503 with the cause while the database cannot
//! write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::*;

/// A TLS connection to the gateway's ACME listener, handshake done, nothing sent.
async fn connect(h: &Harness) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&h.root_pem).unwrap();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(h.gw.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// Everything the server sends until it closes the connection, or None if it is still open
/// after `within`.
async fn read_until_closed(tls: &mut TlsStream<TcpStream>, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

const GET_DIRECTORY: &[u8] =
    b"GET /acme/directory HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";

async fn slow_clients_are_cut_off(backend: Backend) {
    let h = Harness::start_with(backend, |c| c.server.client_timeout_seconds = 1).await;

    // Headers a byte at a time: the connection is closed once the limit has passed.
    let mut slow = connect(&h).await;
    let started = Instant::now();
    for byte in b"GET /acme/directory HTTP/1.1\r\nhost: local" {
        if slow.write_all(&[*byte]).await.is_err() || started.elapsed() > Duration::from_secs(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let answer = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(answer.is_some(), "slow headers were not cut off");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut off after {:?}",
        started.elapsed()
    );

    // An idle connection that never sends a request is closed too.
    let mut idle = connect(&h).await;
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(4))
            .await
            .is_some(),
        "an idle connection stayed open"
    );

    // A body that stops coming: 408 after the limit.
    let mut stalled = connect(&h).await;
    stalled
        .write_all(
            b"POST /acme/new-nonce HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/jose+json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stalled, Duration::from_secs(10))
        .await
        .expect("the server answers a stalled body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("not received within 1 s"), "{answer}");

    // A prompt client is served as usual.
    let mut prompt = connect(&h).await;
    prompt.write_all(GET_DIRECTORY).await.unwrap();
    let answer = read_until_closed(&mut prompt, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    h.gw.shutdown().await;
}
crate::on_both_backends!(slow_clients_are_cut_off, slow_clients_are_cut_off);

/// Past `server.max_connections` a new connection waits until one closes, and the metric says
/// how often that happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_one() {
    let h = Harness::start_with(Backend::Sqlite, |c| c.server.max_connections = 2).await;
    let first = connect(&h).await;
    let _second = connect(&h).await;
    // The third connection's handshake waits: the listener does not accept it yet.
    let third = tokio::spawn({
        let addr = h.gw.addr;
        let root_pem = h.root_pem.clone();
        async move {
            let started = Instant::now();
            let roots = std::fs::read(root_pem).unwrap();
            let key =
                acmegate::client::AccountKey::generate(acmegate::client::KeyAlg::Es256).unwrap();
            let directory = format!("https://localhost:{}/acme/directory", addr.port());
            acmegate::client::AcmeClient::connect(&directory, &roots, key)
                .await
                .expect("served once a connection is free");
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served at once"
    );
    drop(first);
    let waited = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served after a connection closed")
        .unwrap();
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
    let metrics = h.gw.gateway.metrics.render();
    assert!(
        metrics.contains("acmegate_connections_held_total{listener=\"acme\"} 1")
            || metrics.contains("acmegate_connections_held_total{listener=\"acme\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("acmegate_connections_open{listener=\"acme\"}"));
    h.gw.shutdown().await;
}

/// Runs `sql` on the test PostgreSQL server's maintenance database, with psql.
fn psql(sql: &str) {
    let base = std::env::var("ACMEGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let out = std::process::Command::new("psql")
        .args([base.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `/ready`'s status and body, polled until `want` or 10 s.
async fn ready_until(c: &acmegate::client::AcmeClient, url: &str, want: u16) -> (u16, String) {
    let started = Instant::now();
    loop {
        let reply = c.get(url).await.unwrap();
        let answer = (
            reply.status,
            String::from_utf8_lossy(&reply.body).into_owned(),
        );
        if answer.0 == want || started.elapsed() > Duration::from_secs(10) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A PostgreSQL database turned read-only under the gateway: `/ready` answers 503 and names
/// the cause; writable again, 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_database_cannot_write() {
    let h = Harness::start(Backend::Postgres).await;
    let c = client(&h, acmegate::client::KeyAlg::Es256).await;
    let ready_url = format!("{}/ready", h.gw.base_url);
    assert_eq!(ready_until(&c, &ready_url, 200).await.0, 200);
    let url = h.gw.gateway.config.database_url.clone();
    let db = url.rsplit('/').next().unwrap().to_string();
    // Sessions take the setting when they start: end the gateway's.
    let set_read_only = |on: bool| {
        psql(&format!(
            "ALTER DATABASE {db} SET default_transaction_read_only = {on}"
        ));
        psql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
        ));
    };
    set_read_only(true);
    // The first answers may name the ended sessions; then the read-only database.
    let started = Instant::now();
    let (status, body) = loop {
        let answer = ready_until(&c, &ready_url, 503).await;
        if answer.1.contains("read-only") || started.elapsed() > Duration::from_secs(15) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database cannot write"), "{body}");
    assert!(body.contains("read-only transaction"), "{body}");
    set_read_only(false);
    let (status, body) = ready_until(&c, &ready_url, 200).await;
    assert_eq!(status, 200, "{body}");
    h.gw.shutdown().await;
}

/// A small filesystem of its own for a SQLite gateway's data (tmpfs; the tests run as root, as
/// `.ci/run` does); unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path }
    }

    /// Fills the disk up with one file; returns it (remove it to free the space).
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// SQLite on a full disk: requests that must write fail with a problem that says the database
/// cannot write (not a crash, not a hang), `/ready` answers 503 naming the cause, and once
/// space is back the gateway serves again with nothing lost (the account made before is
/// there, the audit chain is intact).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_clearly_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(tmp.path().join("small"), "8m");
    let data = disk.path.join("data");
    let h = Harness::start_with(Backend::Sqlite, |c| c.data_dir = data).await;
    let c = account(&h).await;
    let ready_url = format!("{}/ready", h.gw.base_url);
    assert_eq!(ready_until(&c, &ready_url, 200).await.0, 200);

    let filler = disk.fill();
    let mut refused = None;
    for i in 0..20 {
        let r = c
            .new_order(
                &[acmegate::acme::Identifier::dns(format!("f{i}.full.test"))],
                None,
            )
            .await
            .unwrap();
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("orders kept being stored on a full disk");
    let problem = refused.problem().expect("a problem document");
    assert_eq!(refused.status, 500);
    assert!(
        problem.detail.contains("database cannot write") && problem.detail.contains("full"),
        "{}",
        problem.detail
    );
    let (status, body) = ready_until(&c, &ready_url, 503).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("full"), "{body}");

    std::fs::remove_file(filler).unwrap();
    let (status, body) = ready_until(&c, &ready_url, 200).await;
    assert_eq!(status, 200, "{body}");
    let r = c
        .new_order(&[acmegate::acme::Identifier::dns("after.full.test")], None)
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let store = &h.gw.gateway.store;
    let kid = c.kid.clone().unwrap();
    let id = kid.rsplit('/').next().unwrap();
    assert!(store.account(id).is_ok(), "the account made before is gone");
    assert!(
        matches!(
            store.verify_audit().unwrap(),
            acmegate::store::Verdict::Intact { .. }
        ),
        "the audit chain broke"
    );
    h.gw.shutdown().await;
}
