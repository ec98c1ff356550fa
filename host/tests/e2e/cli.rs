//! The `acmegate` binary: init, migrate, eab, and serve on its defaults (one line of config
//! changed: an ephemeral port), answering a real client and stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_acmegate");

fn acmegate(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("ACMEGATE_CONFIG")
        .env("ACMEGATE_LOG", "warn");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("acmegate runs");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn init_migrate_and_eab_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert!(stdout_of(acmegate(dir.path()).arg("--version")).contains(env!("CARGO_PKG_VERSION")));
    stdout_of(acmegate(dir.path()).arg("init"));
    let written = std::fs::read_to_string(dir.path().join("acmegate.toml")).unwrap();
    assert!(written.contains("[validation]") && written.contains("auto_approve = false"));
    assert!(dir.path().join("acmegate-data").is_dir());
    // A second init refuses to overwrite.
    assert!(!acmegate(dir.path()).arg("init").status().unwrap().success());

    assert!(stdout_of(acmegate(dir.path()).arg("migrate")).contains("up to date"));
    assert!(dir.path().join("acmegate-data/acmegate.db").exists());

    let created = stdout_of(acmegate(dir.path()).args(["eab", "create", "--label", "team-a"]));
    let kid = created
        .lines()
        .find_map(|l| l.strip_prefix("kid:"))
        .unwrap()
        .trim()
        .to_string();
    let hmac = created
        .lines()
        .find_map(|l| l.strip_prefix("hmac_key:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(hmac.len() >= 43, "32-byte key, base64url: {hmac}");
    let list = stdout_of(acmegate(dir.path()).args(["eab", "list"]));
    assert!(
        list.contains(&kid)
            && list.contains("unused")
            && list.contains("team-a")
            && !list.contains(&hmac)
    );
    stdout_of(acmegate(dir.path()).args(["eab", "revoke", &kid]));
    assert!(stdout_of(acmegate(dir.path()).args(["eab", "list"])).contains("revoked"));
    // Typos in environment overrides are errors, not silence.
    let bad = acmegate(dir.path())
        .arg("migrate")
        .env("ACMEGATE_SERVER_LISTN", "x")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ACMEGATE_SERVER_LISTN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_defaults_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = acmegate(dir.path())
        .arg("serve")
        .env("ACMEGATE_SERVER_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut directory = None;
    for _ in 0..5 {
        let line = lines.next().unwrap().unwrap();
        if let Some(url) = line.strip_prefix("ACME directory:") {
            directory = Some(url.trim().to_string());
            break;
        }
    }
    let directory = directory.expect("serve prints the directory URL");
    // Defaults: SQLite file, CA, and the secret beside (not inside) the data directory.
    assert!(dir.path().join("acmegate-data/acmegate.db").exists());
    assert!(dir.path().join("acmegate-secrets/ca.key").exists());
    let root = std::fs::read(dir.path().join("acmegate-data/ca/root.pem")).unwrap();
    let key = acmegate::client::AccountKey::generate(acmegate::client::KeyAlg::Es256).unwrap();
    let mut c = acmegate::client::AcmeClient::connect(&directory, &root, key)
        .await
        .unwrap();
    assert_eq!(c.new_account(&[], None).await.unwrap().status, 201);
    // SIGTERM: graceful shutdown and a clean exit.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
}
