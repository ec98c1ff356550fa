//! Managed certificates end to end, on a clock the test moves: a certificate of a 1-hour
//! profile declared in the config file is issued at start, deployed with its key to a real
//! target (the `http-push-deployer` plugin pushing to an HTTP receiver this test runs, which
//! the deployer then verifies), and renewed and redeployed every time the clock passes its
//! renewal point, across a restart, in seconds of real time. A managed certificate whose
//! target is down is retried with backoff without being issued again, and escalates to a
//! critical notice after three failed rounds.

use std::time::Duration;

use acmegate::admin::Role;
use acmegate::config::{Config, ManagedConfig};
use acmegate::store::ManagedCertificate;
use serde_json::{json, Value};

use crate::admin_api::{call, identity, Identity};
use crate::deployers::{push_deployer, target, Edge};
use crate::notifications::{webhook, webhook_notifier};
use crate::on_both_backends;
use crate::support::*;

pub(crate) const HOUR: i64 = 3_600;

/// The default profile and `hour`: 1-hour certificates.
pub(crate) fn with_hour_profile(c: &mut Config) {
    let hour = acmegate::ca::Profile {
        name: "hour".into(),
        validity_hours: 1,
        ..acmegate::ca::Profile::default_server()
    };
    c.profiles = vec![acmegate::ca::Profile::default_server(), hour];
}

pub(crate) fn managed(name: &str, names: &[&str], targets: &[&str]) -> ManagedConfig {
    ManagedConfig {
        name: name.into(),
        names: names.iter().map(|n| n.to_string()).collect(),
        profile: "hour".into(),
        key_type: "p256".into(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        renew_at_percent: None,
    }
}

/// Managed certificate `name` as stored.
pub(crate) async fn row(h: &Harness, name: &str) -> ManagedCertificate {
    let (store, name) = (h.gw.gateway.store.clone(), name.to_owned());
    tokio::task::spawn_blocking(move || {
        store
            .managed_certificate(&name)
            .unwrap_or_else(|e| panic!("reading managed certificate {name}: {e}"))
    })
    .await
    .unwrap()
}

/// Waits (up to 10 s) until `edge` has received `count` pushes, and returns the last.
pub(crate) async fn push_number(edge: &Edge, count: usize) -> Value {
    eventually(&format!("push number {count}"), || {
        let pushes = edge.pushes.lock().unwrap();
        (pushes.len() >= count).then(|| pushes[count - 1].clone())
    })
    .await
}

/// Asserts that `edge` still has exactly `count` pushes after a while: nothing renews twice.
async fn still(edge: &Edge, count: usize) {
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(edge.pushes.lock().unwrap().len(), count, "no further push");
}

/// The private key `push` carried is the key of the certificate it carried.
fn key_matches_certificate(push: &Value) {
    let cert = openssl::x509::X509::from_pem(push["chain"].as_str().unwrap().as_bytes()).unwrap();
    let key =
        openssl::pkey::PKey::private_key_from_pem(push["private_key"].as_str().unwrap().as_bytes())
            .unwrap();
    assert!(
        cert.public_key().unwrap().public_eq(&key),
        "key and certificate pair"
    );
}

/// Waits (up to 10 s) for a received notice of `event` whose message contains `text`.
async fn notice(received: &std::sync::Mutex<Vec<Value>>, event: &str, text: &str) -> Value {
    eventually(&format!("a {event} notice about {text}"), || {
        received
            .lock()
            .unwrap()
            .iter()
            .find(|v| v["event"] == event && v["message"].as_str().unwrap_or("").contains(text))
            .cloned()
    })
    .await
}

async fn renewed_and_redeployed_as_time_moves(backend: Backend) {
    let edge = Edge::start().await;
    let (hook_port, received) = webhook().await;
    let (edge_url, down) = (
        edge.url(),
        format!("http://127.0.0.1:{}/certificate", free_port()),
    );
    let h = Harness::start_with(backend, move |c| {
        with_hour_profile(c);
        c.plugins = vec![
            push_deployer(json!({"timeout_ms": 3000})),
            webhook_notifier("hook", &format!("http://127.0.0.1:{hook_port}/hook")),
        ];
        c.targets = vec![
            target("edge", &[], 3, json!({"url": edge_url})),
            target("gone", &["nowhere.invalid"], 3, json!({"url": down})),
        ];
        c.managed = vec![
            managed("web", &["web.example.internal", "10.0.0.7"], &["edge"]),
            managed("stuck", &["stuck.example.internal"], &["gone"]),
        ];
    })
    .await;

    // Issued before the clock moves: the admin listener checks client certificates on the
    // wall clock.
    let admin = identity(&h, "ops", Role::Admin).await;

    // At start: issued, deployed with its key, verified; the key is in the store only sealed.
    let first = push_number(&edge, 1).await;
    assert_eq!(first["target"], "edge");
    assert_eq!(
        first["identifiers"],
        json!([
            {"type": "dns", "value": "web.example.internal"},
            {"type": "ip", "value": "10.0.0.7"}
        ])
    );
    key_matches_certificate(&first);
    let mut serial = first["serial"].as_str().unwrap().to_string();
    let stored = eventually_row(&h, "web", |r| r.deployed_serial.is_some()).await;
    assert_eq!(stored.certificate_serial.as_deref(), Some(serial.as_str()));
    assert_eq!(stored.deployed_serial.as_deref(), Some(serial.as_str()));
    assert_eq!((stored.failures, stored.last_error.as_deref()), (0, None));
    let key_pem = first["private_key"].as_str().unwrap();
    let sealed = stored.sealed_key.clone().expect("the key is kept sealed");
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!sealed.contains(line), "no line of the key in the store");
    }
    let deployment: Value =
        serde_json::from_str(stored.last_deployment.as_deref().unwrap()).unwrap();
    assert_eq!(
        deployment["targets"][0]["verified"], "deployed",
        "{deployment}"
    );
    // Renewal in the ARI window of a 1-hour certificate: between 3/4 and 11/12 of its life.
    let due = stored.next_renewal_at - h.clock().now();
    assert!(
        (HOUR * 3 / 4 - 120..=HOUR * 11 / 12 + 60).contains(&due),
        "due in {due} s"
    );
    let issued = notice(&received, "issued", "managed certificate web").await;
    assert_eq!(issued["certificate"]["serial"], serial);
    still(&edge, 1).await;

    // Each hour the clock moves, one renewal and one redeployment.
    for count in 2..=3 {
        h.clock().advance(HOUR);
        let push = push_number(&edge, count).await;
        let renewed = push["serial"].as_str().unwrap().to_string();
        assert_ne!(renewed, serial, "a new certificate");
        key_matches_certificate(&push);
        let told = notice(
            &received,
            "renewed",
            &format!("{renewed} replaces {serial}"),
        )
        .await;
        assert_eq!(told["certificate"]["serial"], renewed);
        serial = renewed;
        still(&edge, count).await;
    }

    // A restart in the middle: the schedule is in the store, so nothing is issued at start and
    // the next renewal comes when the clock passes it.
    let config = h.gw.gateway.config.clone();
    let h = h.restart(config, || {}).await;
    still(&edge, 3).await;
    assert_eq!(
        row(&h, "web").await.certificate_serial.as_deref(),
        Some(serial.as_str())
    );
    // Declared in the config file: the API may not delete it (the next start would declare
    // it again).
    let refused = call(&h, Some(&admin), "DELETE", "/api/v1/managed/web", None, 409).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("[[managed]]"),
        "{refused}"
    );
    h.clock().advance(HOUR);
    let push = push_number(&edge, 4).await;
    assert_ne!(push["serial"], serial);
    key_matches_certificate(&push);
    still(&edge, 4).await;

    // The certificate whose target is down was issued once and its deployment retried with
    // backoff, escalating to a critical notice on the third failure in a row.
    for _ in 0..6 {
        h.clock().advance(30);
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }
    let stuck = eventually_row(&h, "stuck", |r| r.failures >= 3).await;
    assert!(stuck.deployed_serial.is_none());
    assert!(
        stuck.last_error.as_deref().unwrap().contains("target gone"),
        "{:?}",
        stuck.last_error
    );
    let first_failure = notice(&received, "failed", "managed certificate stuck").await;
    let escalated = eventually("a critical notice", || {
        received
            .lock()
            .unwrap()
            .iter()
            .find(|v| {
                v["severity"] == "critical" && v["message"].as_str().unwrap_or("").contains("stuck")
            })
            .cloned()
    })
    .await;
    assert_eq!(first_failure["severity"], "warning", "{first_failure}");
    assert!(
        first_failure["message"]
            .as_str()
            .unwrap()
            .contains("(attempt 1)"),
        "{first_failure}"
    );
    assert!(
        escalated["message"]
            .as_str()
            .unwrap()
            .contains("3 consecutive failures"),
        "{escalated}"
    );
    let certificate = escalated["certificate"]["serial"].as_str().unwrap();
    assert_eq!(
        Some(certificate),
        stuck.certificate_serial.as_deref(),
        "issued once"
    );
}

/// Two replicas on one PostgreSQL database and one clock (the test moves it): every renewal of
/// a managed certificate is issued, deployed and told once, by whichever replica claims the
/// row, however both replicas' workers race for it each second.
async fn renewed_once_across_replicas() {
    let edge = Edge::start().await;
    let (hook_port, received) = webhook().await;
    let edge_url = edge.url();
    let h = Harness::start_with(Backend::Postgres, move |c| {
        with_hour_profile(c);
        c.plugins = vec![
            push_deployer(json!({"timeout_ms": 3000})),
            webhook_notifier("hook", &format!("http://127.0.0.1:{hook_port}/hook")),
        ];
        c.targets = vec![target("edge", &[], 3, json!({"url": edge_url}))];
        c.managed = vec![managed("web", &["web.example.internal"], &["edge"])];
    })
    .await;
    let mut config = h.gw.gateway.config.clone();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    let other = acmegate::server::start_at(config, None, h.clock().clone())
        .await
        .expect("second replica starts");
    let admin = identity(&h, "ops", Role::Admin).await;

    let mut serials = vec![push_number(&edge, 1).await["serial"].clone()];
    still(&edge, 1).await;
    for count in 2..=4 {
        h.clock().advance(HOUR);
        let push = push_number(&edge, count).await;
        key_matches_certificate(&push);
        serials.push(push["serial"].clone());
        still(&edge, count).await;
    }
    serials.dedup();
    assert_eq!(
        serials.len(),
        4,
        "a new certificate each round: {serials:?}"
    );
    let issued = call(
        &h,
        Some(&admin),
        "GET",
        "/api/v1/certificates?origin=managed",
        None,
        200,
    )
    .await;
    assert_eq!(
        issued["total"], 4,
        "one certificate issued per round: {issued}"
    );
    let told = |event: &str| {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["event"] == event)
            .count()
    };
    assert_eq!(
        (told("issued"), told("renewed")),
        (1, 3),
        "each round told once"
    );
    assert_eq!(
        row(&h, "web").await.deployed_serial.map(Value::from),
        serials.last().cloned()
    );
    other.shutdown().await;
}

on_both_backends!(
    managed_certificate_with_a_damaged_sealed_key_is_issued_anew,
    damaged_sealed_key_is_issued_anew
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_certificates_renew_once_across_replicas() {
    renewed_once_across_replicas().await;
}

/// Runs `sql` on the gateway's database from outside, as damage would reach it.
fn tamper(config: &Config, sql: &str) {
    use diesel::{Connection, RunQueryDsl};
    let url = config.database_url();
    let changed = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut db = diesel::SqliteConnection::establish(path).expect("open SQLite");
            // Waits out a write still finishing, as any second writer of the file would.
            diesel::sql_query("PRAGMA busy_timeout = 5000")
                .execute(&mut db)
                .expect("set a busy timeout");
            diesel::sql_query(sql).execute(&mut db)
        }
        None => diesel::sql_query(sql)
            .execute(&mut diesel::PgConnection::establish(&url).expect("open PostgreSQL")),
    };
    assert_eq!(changed.expect("tampering runs"), 1, "{sql}");
}

/// A managed certificate whose deployment is still owed but whose sealed key no longer opens
/// (the row damaged) is not stuck retrying for ever: the next round issues a new key and
/// certificate and deploys those.
async fn damaged_sealed_key_is_issued_anew(backend: Backend) {
    let edge = Edge::start().await;
    let down = format!("http://127.0.0.1:{}/certificate", free_port());
    let h = Harness::start_with(backend, move |c| {
        with_hour_profile(c);
        c.plugins = vec![push_deployer(json!({"timeout_ms": 3000}))];
        c.targets = vec![target("edge", &[], 3, json!({"url": down}))];
        c.managed = vec![managed("web", &["web.example.internal"], &["edge"])];
    })
    .await;
    // Issued, but the target is down: the deployment is owed.
    let first = eventually_row(&h, "web", |r| r.failures >= 1).await;
    let issued = first.certificate_serial.clone().expect("issued once");
    assert_eq!(first.deployed_serial, None);

    let mut config = h.gw.gateway.config.clone();
    config.targets[0].config = crate::deployers::toml_table(json!({"url": edge.url()}));
    let damage = config.clone();
    let h = h
        .restart(config, move || {
            tamper(
                &damage,
                "UPDATE managed_certificates SET sealed_key = 'damaged' WHERE name = 'web'",
            )
        })
        .await;
    h.clock().advance(HOUR / 4);
    let push = push_number(&edge, 1).await;
    key_matches_certificate(&push);
    let renewed = push["serial"].as_str().unwrap();
    assert_ne!(
        renewed, issued,
        "a new certificate, not the one whose key is lost"
    );
    let now = eventually_row(&h, "web", |r| r.deployed_serial.is_some()).await;
    assert_eq!(now.certificate_serial.as_deref(), Some(renewed));
    assert_eq!(now.deployed_serial.as_deref(), Some(renewed));
    assert_ne!(now.sealed_key.as_deref(), Some("damaged"));
    still(&edge, 1).await;
}

/// Waits (up to 10 s) until managed certificate `name` is as `wanted` says, and returns it.
pub(crate) async fn eventually_row(
    h: &Harness,
    name: &str,
    wanted: impl Fn(&ManagedCertificate) -> bool,
) -> ManagedCertificate {
    for _ in 0..100 {
        let r = row(h, name).await;
        if wanted(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "managed certificate {name} never reached the state waited for: {:?}",
        row(h, name).await
    );
}

/// An admin identity directory for the CLI, as `acmegate admin-cert issue` writes one.
fn identity_dir(h: &Harness, who: &Identity) -> std::path::PathBuf {
    let dir = h.path("cli-identity");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&who.cert, dir.join("cert.pem")).unwrap();
    std::fs::copy(&who.key, dir.join("key.pem")).unwrap();
    std::fs::copy(&h.root_pem, dir.join("ca.pem")).unwrap();
    dir
}

/// `acmegate certs ARGS` against `h`'s admin API with the identity in `dir`.
fn certs_cli(h: &Harness, dir: &std::path::Path, args: &[&str]) -> tokio::process::Command {
    let port = h.gw.admin_addr.expect("admin listener").port();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_acmegate"));
    cmd.current_dir(h.dir.path())
        .env_remove("ACMEGATE_CONFIG")
        .env("ACMEGATE_LOG", "warn")
        .arg("certs")
        .arg("--admin-url")
        .arg(format!("https://127.0.0.1:{port}"))
        .arg("--identity")
        .arg(dir)
        .args(args);
    cmd
}

async fn cli_stdout(h: &Harness, dir: &std::path::Path, args: &[&str]) -> String {
    let out = run(
        &mut certs_cli(h, dir, args),
        &format!("acmegate certs {args:?}"),
    )
    .await;
    String::from_utf8(out.stdout).unwrap()
}

async fn listed_renewed_paused_and_resumed_over_the_api_and_the_cli(backend: Backend) {
    let edge = Edge::start().await;
    let edge_url = edge.url();
    let h = Harness::start_with(backend, move |c| {
        with_hour_profile(c);
        c.plugins = vec![push_deployer(json!({"timeout_ms": 3000}))];
        c.targets = vec![target("edge", &[], 3, json!({"url": edge_url}))];
    })
    .await;
    let admin = identity(&h, "ops", Role::Admin).await;
    let service = identity(&h, "svc", Role::Client).await;
    let cli = identity_dir(&h, &admin);
    let definition = json!({
        "name": "api",
        "names": ["api.example.internal"],
        "profile": "hour",
        "targets": ["edge"],
        "renew_at_percent": 50
    });

    // Changes need the admin role; definitions are checked, naming the key and the value.
    call(
        &h,
        Some(&service),
        "POST",
        "/api/v1/managed",
        Some(definition.clone()),
        403,
    )
    .await;
    let bad = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/managed",
        Some(json!({"name": "x", "names": ["x.example.internal"], "key_type": "dsa1024"})),
        400,
    )
    .await;
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .contains("key_type = \"dsa1024\""),
        "{bad}"
    );
    let bad = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/managed",
        Some(json!({"name": "x", "names": ["x.example.internal"], "targets": ["nowhere"]})),
        400,
    )
    .await;
    assert!(
        bad["detail"].as_str().unwrap().contains("\"nowhere\""),
        "{bad}"
    );
    let created = call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/managed",
        Some(definition.clone()),
        201,
    )
    .await;
    assert_eq!(
        (
            &created["state"],
            &created["renew_policy"],
            &created["declared"]
        ),
        (&json!("active"), &json!("percent"), &json!(false))
    );
    call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/managed",
        Some(definition),
        409,
    )
    .await;

    // Issued and deployed at once; renewal at half of the 1-hour lifetime.
    let first = push_number(&edge, 1).await;
    let serial = first["serial"].as_str().unwrap().to_string();
    let shown = eventually_row(&h, "api", |r| r.deployed_serial.is_some()).await;
    let due = shown.next_renewal_at - h.clock().now();
    assert!((1_700..=1_900).contains(&due), "due in {due} s");
    let got = call(&h, Some(&admin), "GET", "/api/v1/managed/api", None, 200).await;
    assert_eq!(got["deployed_serial"], serial);
    assert_eq!(got["last_deployment"]["deployed"], true);
    assert_eq!(got["last_deployment"]["targets"][0]["target"], "edge");
    assert!(
        got.get("sealed_key").is_none(),
        "the key stays out of the API"
    );
    let listed = call(&h, Some(&admin), "GET", "/api/v1/managed", None, 200).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["name"], "api");
    call(&h, Some(&service), "GET", "/api/v1/managed", None, 403).await;

    // The CLI lists it with its state, serial and deployment.
    let table = cli_stdout(&h, &cli, &["list"]).await;
    let line = table
        .lines()
        .find(|l| l.starts_with("api "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("active") && line.contains(&format!("deployed {serial}")),
        "{table}"
    );

    // Paused: the clock passes the renewal and nothing happens; resumed: renewed at once.
    let paused = cli_stdout(&h, &cli, &["pause", "api"]).await;
    assert!(paused.contains("api: paused"), "{paused}");
    h.clock().advance(HOUR);
    still(&edge, 1).await;
    let table = cli_stdout(&h, &cli, &["list"]).await;
    assert!(table.contains("paused"), "{table}");
    cli_stdout(&h, &cli, &["resume", "api"]).await;
    let second = push_number(&edge, 2).await;
    assert_ne!(second["serial"], first["serial"]);
    still(&edge, 2).await;

    // Renew now, from the CLI and the API: a new certificate each time, before it is due.
    cli_stdout(&h, &cli, &["renew", "api"]).await;
    let third = push_number(&edge, 3).await;
    assert_ne!(third["serial"], second["serial"]);
    call(
        &h,
        Some(&admin),
        "POST",
        "/api/v1/managed/api/renew",
        None,
        202,
    )
    .await;
    let fourth = push_number(&edge, 4).await;
    assert_ne!(fourth["serial"], third["serial"]);
    key_matches_certificate(&fourth);
    still(&edge, 4).await;

    // The CLI says why it fails: an unknown name, and an identity it cannot read.
    let unknown = run_failing(
        &mut certs_cli(&h, &cli, &["renew", "nosuch"]),
        "renew nosuch",
    )
    .await;
    assert!(
        unknown.contains("404") && unknown.contains("not found"),
        "{unknown}"
    );
    let mut no_identity = certs_cli(&h, &h.path("nowhere"), &["list"]);
    let unreadable = run_failing(&mut no_identity, "list without an identity").await;
    assert!(
        unreadable.contains("cannot read") && unreadable.contains("cert.pem"),
        "{unreadable}"
    );

    // Deleted: no longer listed, never renewed again.
    call(&h, Some(&admin), "DELETE", "/api/v1/managed/api", None, 200).await;
    call(&h, Some(&admin), "GET", "/api/v1/managed/api", None, 404).await;
    h.clock().advance(HOUR);
    still(&edge, 4).await;
}

on_both_backends!(
    managed_certificates_over_the_api_and_the_cli,
    listed_renewed_paused_and_resumed_over_the_api_and_the_cli
);

on_both_backends!(
    managed_certificates_renew_and_redeploy_as_time_moves,
    renewed_and_redeployed_as_time_moves
);
