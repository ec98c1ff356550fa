//! The files-deployer plugin against a real nginx (Debian's package): the gateway writes the
//! chain, the key and a combined PEM into the directory it was granted, runs the granted
//! reload command, and nginx then serves the new certificate, which the plugin's TLS probe and
//! an independent OpenSSL client both see.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acmegate::admin::Role;
use acmegate::plugins::PluginConfig;
use serde_json::json;

use crate::admin_api::identity;
use crate::deployers::{audited, generated_serial, issued_serial, target_of, toml_table};
use crate::support::*;

/// nginx serving TLS on 127.0.0.1:`port` from `certs/fullchain.pem` and `certs/privkey.pem`
/// under `dir`, started with a self-signed certificate; stopped on drop.
struct Nginx {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Nginx {
    fn start(dir: &Path) -> Nginx {
        let port = free_port();
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let first = rcgen::generate_simple_self_signed(vec!["files.example".into()]).unwrap();
        std::fs::write(certs.join("fullchain.pem"), first.cert.pem()).unwrap();
        std::fs::write(certs.join("privkey.pem"), first.signing_key.serialize_pem()).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n\
               proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n\
               uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
               server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name files.example;\n\
                 ssl_certificate {d}/certs/fullchain.pem;\n\
                 ssl_certificate_key {d}/certs/privkey.pem;\n\
                 location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        // Its output goes to error.log: a worker that outlived the test must not hold the test
        // harness's stdout open (CI's tee would wait on it for ever).
        let child = Command::new("nginx")
            .args(Self::args(dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx runs (Debian package nginx, installed by .ci/run)");
        let nginx = Nginx {
            dir: dir.to_path_buf(),
            port,
            child,
        };
        for _ in 0..100 {
            if nginx.served_serial().is_some() {
                return nginx;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nginx did not serve TLS on {port}: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }

    /// nginx's command line for this instance, before any `-s` signal.
    fn args(dir: &Path) -> Vec<String> {
        let d = dir.display();
        vec![
            "-p".into(),
            format!("{d}/"),
            "-c".into(),
            format!("{d}/nginx.conf"),
            "-e".into(),
            format!("{d}/error.log"),
        ]
    }

    /// The serial nginx serves once it serves `serial` (compared without leading zeros), or
    /// the last one it served after 5 s. A reload is asynchronous: for a moment after it,
    /// a worker of the old generation may still take a connection.
    fn serial_once_it_serves(&self, serial: &str) -> Option<String> {
        let mut last = None;
        for _ in 0..100 {
            last = self.served_serial();
            if last.as_deref().map(trimmed) == Some(trimmed(serial)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        last
    }

    /// The serial (lowercase hex) of the leaf nginx serves for `files.example`, by OpenSSL's
    /// own TLS client; `None` while it is not answering.
    fn served_serial(&self) -> Option<String> {
        let mut connector =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
        connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let tls = connector.build().connect("files.example", stream).ok()?;
        let serial = tls.ssl().peer_certificate()?.serial_number().to_bn().ok()?;
        Some(serial.to_hex_str().ok()?.to_ascii_lowercase())
    }
}

impl Drop for Nginx {
    /// Stops the master and waits for it: on `stop` it ends its workers (those of every
    /// reload) before it exits. Killing it outright would leave them running, orphaned.
    fn drop(&mut self) {
        let _ = Command::new("nginx")
            .args(Self::args(&self.dir))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn files_deployer(nginx: &Nginx) -> PluginConfig {
    let mut reload = Nginx::args(&nginx.dir);
    reload.insert(0, "nginx".into());
    reload.extend(["-s".into(), "reload".into()]);
    let grants = json!({
        "files_dir": nginx.dir.join("certs"),
        "commands": {"reload-nginx": reload},
        "tls_probe_hosts": [format!("127.0.0.1:{}", nginx.port)],
    });
    PluginConfig {
        name: "files".into(),
        kind: "target-deployer".into(),
        file: plugin_component("files-deployer"),
        config: toml_table(json!({"timeout_ms": 5000})),
        grants: toml_table(grants),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Hex serials compare without leading zeros.
fn trimmed(serial: &str) -> &str {
    serial.trim_start_matches('0')
}

async fn nginx_serves_what_the_files_deployer_wrote(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path());
    let first = nginx.served_serial().unwrap();
    let deployer = files_deployer(&nginx);
    let probe = json!({"host": "127.0.0.1", "port": nginx.port, "server_name": "files.example"});
    let targets = vec![
        // nginx: key, chain and HAProxy's combined form, reload, then a handshake.
        target_of(
            "files",
            "nginx",
            &["files.example"],
            5,
            json!({"chain": "fullchain.pem", "key": "privkey.pem", "combined": "combined.pem",
                   "reload": "reload-nginx", "probe": probe}),
        ),
        // A chain-only target, verified by reading the file back.
        target_of(
            "files",
            "bundle",
            &["bundle.example"],
            1,
            json!({"chain": "bundle.pem"}),
        ),
        // Wants the key of certificates whose key an ACME client keeps: refused, nothing written.
        target_of(
            "files",
            "keyed",
            &["keyed.example"],
            1,
            json!({"chain": "keyed.pem", "key": "keyed.key"}),
        ),
    ];
    let h = Harness::start_with(backend, move |c| {
        c.acme.auto_approve = true;
        with_short_profile(c);
        c.plugins = vec![deployer];
        c.targets = targets;
    })
    .await;

    let admin = identity(&h, "ops", Role::Admin).await;
    let serial = generated_serial(&h, &admin, "files.example").await;
    let deployed = audited(&h, "certificate.deployed", &serial).await;
    assert_eq!(deployed["target"], "nginx");
    assert_eq!(deployed["verified"], "deployed", "{deployed}");
    let receipt = deployed["receipt"].as_str().unwrap();
    assert!(
        receipt.contains("wrote privkey.pem, combined.pem, fullchain.pem")
            && receipt.contains("reload-nginx exited 0"),
        "{receipt}"
    );
    // OpenSSL, not the plugin, sees nginx serve the new certificate after the reload.
    let served = nginx
        .serial_once_it_serves(&serial)
        .expect("nginx still serves");
    assert_ne!(served, first);
    assert_eq!(trimmed(&served), trimmed(&serial));
    let certs = dir.path().join("certs");
    assert_eq!(mode(&certs.join("privkey.pem")), 0o600);
    assert_eq!(mode(&certs.join("combined.pem")), 0o600);
    assert_eq!(mode(&certs.join("fullchain.pem")), 0o644);
    let combined = std::fs::read_to_string(certs.join("combined.pem")).unwrap();
    assert!(
        combined.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{combined}"
    );
    assert!(combined.contains("-----BEGIN CERTIFICATE-----"));
    let leftovers: Vec<_> = std::fs::read_dir(&certs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // An ACME certificate: the chain-only target takes it and verifies by reading it back;
    // the target that wants a key the gateway does not hold refuses before writing anything.
    let acme = account(&h).await;
    let bundle = issued_serial(&h, &acme, "bundle.example").await;
    let deployed = audited(&h, "certificate.deployed", &bundle).await;
    assert_eq!(deployed["verified"], "deployed", "{deployed}");
    assert!(certs.join("bundle.pem").exists());
    let keyed = issued_serial(&h, &acme, "keyed.example").await;
    let failed = audited(&h, "certificate.deploy_failed", &keyed).await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("does not hold the key"),
        "{failed}"
    );
    assert!(!certs.join("keyed.pem").exists() && !certs.join("keyed.key").exists());
    h.gw.shutdown().await;
}

crate::on_both_backends!(
    nginx_serves_what_the_files_deployer_wrote,
    nginx_serves_what_the_files_deployer_wrote
);

/// A managed certificate (1-hour profile) whose target is nginx: the gateway writes its key
/// and chain at start and again at each renewal as the test moves the clock, reloads nginx,
/// and nginx serves each new certificate to OpenSSL's client.
async fn nginx_serves_each_renewal_of_a_managed_certificate(backend: Backend) {
    use crate::managed::{eventually_row, managed, with_hour_profile, HOUR};
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path());
    let deployer = files_deployer(&nginx);
    let probe = json!({"host": "127.0.0.1", "port": nginx.port, "server_name": "files.example"});
    let h = Harness::start_with(backend, move |c| {
        with_hour_profile(c);
        c.plugins = vec![deployer];
        c.targets = vec![target_of(
            "files",
            "nginx",
            &[],
            3,
            json!({"chain": "fullchain.pem", "key": "privkey.pem", "reload": "reload-nginx",
                   "probe": probe}),
        )];
        c.managed = vec![managed("web", &["files.example"], &["nginx"])];
    })
    .await;
    let mut served = Vec::new();
    for round in 0..3 {
        if round > 0 {
            h.clock().advance(HOUR);
        }
        let row = eventually_row(&h, "web", |r| {
            r.deployed_serial
                .as_ref()
                .is_some_and(|s| !served.contains(s))
        })
        .await;
        let serial = row.deployed_serial.unwrap();
        let now = nginx.serial_once_it_serves(&serial).expect("nginx serves");
        assert_eq!(
            trimmed(&now),
            trimmed(&serial),
            "round {round}: nginx serves it"
        );
        served.push(serial);
    }
    assert_eq!(mode(&dir.path().join("certs/privkey.pem")), 0o600);
    h.gw.shutdown().await;
}

crate::on_both_backends!(
    nginx_serves_each_renewal_of_a_managed_certificate,
    nginx_serves_each_renewal_of_a_managed_certificate
);
