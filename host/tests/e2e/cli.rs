//! The `acmegate` binary: init, migrate, eab, and serve on its defaults (one line of config
//! changed: an ephemeral port), answering a real client and stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// `migrate` names the database it migrated without the password in its URL.
#[test]
fn migrate_prints_the_database_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut url = url::Url::parse(&acmegate_testkit::db::fresh_postgres_url()).unwrap();
    // The test server trusts loopback and ignores the password: only its display matters. (On
    // a server that checks passwords, set ACMEGATE_TEST_POSTGRES_URL with the real one.)
    if url.password().is_none() {
        url.set_password(Some("s3cret-pw")).unwrap();
    }
    let password = url.password().unwrap().to_string();
    let with_password = url.to_string();
    let out = stdout_of(
        acmegate(dir.path())
            .arg("migrate")
            .env("ACMEGATE_DATABASE_URL", &with_password),
    );
    assert!(out.contains("up to date"), "{out}");
    assert!(out.contains(":***@"), "{out}");
    assert!(!out.contains(&password), "the password leaked: {out}");
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

    // Not a terminal and no --base-url: said loudly, on stderr.
    let quiet = acmegate(dir.path())
        .args(["init", "--force"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&quiet.stderr);
    assert!(said.contains("server.base_url is not set"), "{said}");
    // The URL given lands in the file, with its host among the TLS names; a bad one writes
    // nothing.
    let other = tempfile::tempdir().unwrap();
    let out = stdout_of(acmegate(other.path()).args([
        "init",
        "--base-url",
        "https://acme.example.internal:8443",
        "--http-listen",
        "0.0.0.0:8080",
    ]));
    assert!(
        out.contains("certificates name http://acme.example.internal:8080/ca/crl.der"),
        "{out}"
    );
    let written = std::fs::read_to_string(other.path().join("acmegate.toml")).unwrap();
    assert!(written.contains("base_url = \"https://acme.example.internal:8443\""));
    assert!(written.contains("tls_names = [\"acme.example.internal\", \"localhost\""));
    let bad = tempfile::tempdir().unwrap();
    let refused = acmegate(bad.path())
        .args(["init", "--base-url", "acme.example.internal"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("server.base_url"));
    assert!(!bad.path().join("acmegate.toml").exists());

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

/// A configuration mistake is the operator's, not a crash: one line on stderr naming the key
/// and where it was set, status 1, and no backtrace even when one is asked for.
#[test]
fn bad_configuration_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acmegate.toml"),
        "[validation]\nhttp01_port = 70000\n",
    )
    .unwrap();
    let stderr_of = |cmd: &mut Command| {
        let out = cmd.env("RUST_BACKTRACE", "1").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    assert_eq!(
        stderr_of(acmegate(dir.path()).arg("migrate")),
        "acmegate: failed to load configuration: config file acmegate.toml: \
         validation.http01_port = 70000: invalid value: integer `70000`, expected u16\n"
    );
    std::fs::remove_file(dir.path().join("acmegate.toml")).unwrap();
    assert_eq!(
        stderr_of(
            acmegate(dir.path())
                .arg("serve")
                .env("ACMEGATE_VALIDATION_HTTP01_PORT", "0")
        ),
        "acmegate: failed to load configuration: invalid configuration: \
         validation.http01_port = 0: expected a port from 1 to 65535\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_defaults_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_in(dir.path());
    // Defaults: SQLite file, CA, and the secret beside (not inside) the data directory.
    assert!(dir.path().join("acmegate-data/acmegate.db").exists());
    assert!(dir.path().join("acmegate-secrets/ca.key").exists());
    let root = std::fs::read(dir.path().join("acmegate-data/ca/root.pem")).unwrap();
    let key = acmegate::client::AccountKey::generate(acmegate::client::KeyAlg::Es256).unwrap();
    let mut c = acmegate::client::AcmeClient::connect(&served.directory, &root, key)
        .await
        .unwrap();
    assert_eq!(c.new_account(&[], None).await.unwrap().status, 201);
    // SIGTERM: graceful shutdown and a clean exit.
    sigterm(served.child);
}

/// A running `acmegate serve`.
struct Served {
    child: std::process::Child,
    directory: String,
    admin_port: u16,
    /// Kept open: the gateway logs to it, and a closed pipe would fail its writes.
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

/// `acmegate serve` in `dir` on its defaults, except for ephemeral ports.
fn serve_command(dir: &std::path::Path) -> Command {
    let mut cmd = acmegate(dir);
    cmd.arg("serve")
        .env("ACMEGATE_SERVER_LISTEN", "127.0.0.1:0")
        .env("ACMEGATE_ADMIN_LISTEN", "127.0.0.1:0");
    cmd
}

/// Starts `acmegate serve` in `dir` (see [`serve_command`]) and reads the ACME directory URL
/// and the admin API address it prints.
fn serve_in(dir: &std::path::Path) -> Served {
    let mut child = serve_command(dir).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut directory, mut admin_port) = (None, None);
    let mut errors = Vec::new();
    for line in lines.by_ref().take(6).map_while(Result::ok) {
        if line.contains("ERROR") {
            errors.push(line.clone());
        }
        if let Some(url) = line.strip_prefix("ACME directory:") {
            directory = Some(url.trim().to_string());
        }
        if let Some(rest) = line.strip_prefix("Admin API (mTLS): https://127.0.0.1:") {
            admin_port = rest.split('/').next().and_then(|p| p.parse().ok());
            break;
        }
    }
    match (directory, admin_port) {
        (Some(directory), Some(admin_port)) if errors.is_empty() => Served {
            child,
            directory,
            admin_port,
            _stdout: lines,
        },
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not print the ACME directory and the admin API address, or logged errors: {errors:?}");
        }
    }
}

/// Logs written to a file carry no colour codes (stdout is no terminal), and with
/// `log.format = "json"` every line of stdout is one JSON object with a level and a message.
#[test]
fn serve_logs_to_a_file_without_colour_or_as_json_lines() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let errors = dir.path().join("serve.stderr");
        let mut child = serve_command(dir.path())
            .env("ACMEGATE_LOG", "info")
            .env("ACMEGATE_LOG_FORMAT", format)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&errors).unwrap())
            .spawn()
            .unwrap();
        let read = || std::fs::read_to_string(&log).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !read().contains("Admin API (mTLS)") {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{format}: serve exited ({status}):\n{}{}",
                    read(),
                    std::fs::read_to_string(&errors).unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{format}: serve did not start:\n{}",
                read()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sigterm(child);
        let text = read();
        match format {
            "text" => {
                assert!(text.contains(" INFO "), "no log line to check:\n{text}");
                assert!(!text.contains('\x1b'), "colour codes in a file:\n{text}");
            }
            _ => {
                let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
                assert!(lines.len() > 4, "too few lines to check:\n{text}");
                for line in lines {
                    let event: serde_json::Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    assert!(event["level"].is_string(), "no level: {line}");
                    assert!(event["message"].is_string(), "no message: {line}");
                }
                assert!(text.contains("ACME directory:"), "{text}");
            }
        }
    }
}

fn sigterm(mut child: std::process::Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
}

/// The shell commands of the README's admin API example, as the README shows them.
fn readme_admin_example() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("<!-- admin-example:start -->")
        .expect("example start marker");
    let end = readme
        .find("<!-- admin-example:end -->")
        .expect("example end marker");
    let block = &readme[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(body, _)| body)
        .expect("a sh code block between the markers");
    body.to_string()
}

/// The README's curl examples, run as written against `acmegate serve` on its defaults (only
/// the ports differ), then `acmegate audit verify` before and after someone edits the audit
/// log in the database.
#[test]
fn readme_admin_example_runs_and_audit_verify_catches_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_in(dir.path());
    let admin_port = served.admin_port;
    let script = readme_admin_example()
        .replace("cargo run --release --", BIN)
        .replace("localhost:9443", &format!("localhost:{admin_port}"))
        // Fail on HTTP errors, and keep each answer for the checks below.
        .replace("curl ", "curl -sS --fail -w '\\n' ");
    let out = Command::new("sh")
        .arg("-ec")
        .arg(&script)
        .current_dir(dir.path())
        .env_remove("ACMEGATE_CONFIG")
        .env("ACMEGATE_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "README example failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["cert.pem", "key.pem", "identity.p12", "ca.pem"] {
        assert!(dir.path().join("alice").join(file).exists(), "alice/{file}");
    }
    assert!(
        stdout.contains(r#""total":0"#),
        "nothing expires yet: {stdout}"
    );
    assert!(stdout.contains(r#""hmac_key""#), "{stdout}");
    assert!(stdout.contains(r#""intact":true"#), "{stdout}");
    let p12 = Command::new("openssl")
        .args(["pkcs12", "-nokeys", "-passin", "pass:changeit", "-in"])
        .arg(dir.path().join("printer.p12"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&p12.stdout).contains("printer.internal"),
        "{}",
        String::from_utf8_lossy(&p12.stderr)
    );
    sigterm(served.child);

    let verified = stdout_of(acmegate(dir.path()).args(["audit", "verify"]));
    assert!(verified.contains("intact"), "{verified}");
    // Someone with access to the database file edits the EAB key's entry.
    let url = format!(
        "sqlite://{}",
        dir.path().join("acmegate-data/acmegate.db").display()
    );
    let store = acmegate::store::Store::open(&url).unwrap();
    let seq: Vec<acmegate::store::AuditEntry> = store
        .audit_entries(
            &acmegate::store::AuditFilter::action("eab.create"),
            acmegate::store::PageRequest::first(1),
        )
        .unwrap()
        .items;
    drop(store);
    let changed = acmegate_testkit::db::execute_sql(
        &url,
        "UPDATE audit_log SET details = '{\"label\":\"someone-else\"}' WHERE action = 'eab.create'",
    );
    assert_eq!(changed, 1);
    let out = acmegate(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("BROKEN at entry {}", seq[0].seq)),
        "{text}"
    );

    // Mended, the chain verifies again.
    let mended = format!(
        "UPDATE audit_log SET details = '{}' WHERE seq = {}",
        seq[0].details.replace('\'', "''"),
        seq[0].seq
    );
    assert_eq!(acmegate_testkit::db::execute_sql(&url, &mended), 1);
    stdout_of(acmegate(dir.path()).args(["audit", "verify"]));

    // Archiving refuses to move a broken chain out of the database, naming the entry: the
    // first one edited (a space after its JSON). Every entry is more than a second old, so all
    // but the newest are due.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let archive = || {
        acmegate(dir.path())
            .args(["audit", "archive", "--older-than-days", "0"])
            .output()
            .unwrap()
    };
    let edit = |sql: &str| assert_eq!(acmegate_testkit::db::execute_sql(&url, sql), 1);
    edit("UPDATE audit_log SET details = details || ' ' WHERE seq = 1");
    let out = archive();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("audit entry 1: "), "{stderr}");
    assert!(
        !dir.path().join("acmegate-data/audit-archive").exists(),
        "nothing written"
    );
    // Mended, every entry but the newest moves to the archive, and both parts verify: the
    // files up to the sealed checkpoint, the database from it.
    edit("UPDATE audit_log SET details = rtrim(details) WHERE seq = 1");
    let out = archive();
    let archived = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{archived}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(archived.contains("archived entries 1 to "), "{archived}");
    assert!(dir.path().join("acmegate-data/audit-archive").is_dir());
    let verified = stdout_of(acmegate(dir.path()).args(["audit", "verify", "--archive"]));
    assert!(
        verified.contains("audit archive intact: entries 1 to "),
        "{verified}"
    );
    assert!(verified.contains("audit log intact"), "{verified}");
    assert!(
        verified.contains("archived, from their sealed checkpoint on"),
        "{verified}"
    );
}

/// `acmegate plugins inspect` shows what a component declares before anyone loads it: its
/// world, its contract version (0.2.0, or 0.1.0 for an older build) and whether it loads
/// here, and each capability it imports with the grant it needs (the uPKI connector imports
/// zmq and no http; the webhook notifier the reverse); a component of another contract major
/// and a file that is no component are named.
#[test]
fn plugins_inspect_shows_kind_contract_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let inspect = |name: &str| {
        acmegate(dir.path())
            .args(["plugins", "inspect"])
            .arg(crate::support::plugin_component(name))
            .output()
            .unwrap()
    };
    let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let upki = inspect("upki-issuer");
    let shown = text(&upki);
    assert!(upki.status.success(), "{shown}");
    assert!(shown.contains("world     issuer-connector"), "{shown}");
    assert!(
        shown.contains("contract  acmegate:plugin@0.2.0 (loads on this gateway"),
        "{shown}"
    );
    assert!(
        shown.contains("acmegate:plugin/zmq@0.2.0\tgrant: zmq_endpoints"),
        "{shown}"
    );
    assert!(!shown.contains("acmegate:plugin/http@"), "{shown}");
    let webhook = text(&inspect("webhook-notifier"));
    assert!(webhook.contains("world     notifier"), "{webhook}");
    assert!(webhook.contains("grant: http_hosts"), "{webhook}");
    assert!(!webhook.contains("zmq"), "{webhook}");
    // The same connector built against 0.1.0 (the contract before per-kind imports) loads too,
    // and says which contract it speaks.
    let old = acmegate(dir.path())
        .args(["plugins", "inspect"])
        .arg(crate::plugin_versions::plugin_component_v0_1("upki-issuer"))
        .output()
        .unwrap();
    let shown = text(&old);
    assert!(old.status.success(), "{shown}");
    assert!(
        shown.contains("contract  acmegate:plugin@0.1.0 (loads on this gateway"),
        "{shown}"
    );
    assert!(shown.contains("world     issuer-connector"), "{shown}");
    assert!(
        shown.contains("acmegate:plugin/zmq@0.1.0\tgrant: zmq_endpoints"),
        "{shown}"
    );
    let other_major = text(&inspect("wrong-major"));
    assert!(
        other_major.contains("does NOT load on this gateway"),
        "{other_major}"
    );
    let not_wasm = dir.path().join("x.wasm");
    std::fs::write(&not_wasm, "not a component").unwrap();
    let out = acmegate(dir.path())
        .args(["plugins", "inspect"])
        .arg(&not_wasm)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not a WebAssembly file"), "{stderr}");
}

/// `acmegate plugins status` loads each configured plugin as `serve` would and names the one
/// that does not load.
#[test]
fn plugins_status_loads_each_configured_plugin() {
    let dir = tempfile::tempdir().unwrap();
    stdout_of(acmegate(dir.path()).arg("init"));
    let config = dir.path().join("acmegate.toml");
    let add = |name: &str, file: &std::path::Path| {
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[[plugins]]\nname = \"{name}\"\nkind = \"challenge-validator\"\nfile = \"{}\"\nconfig = {{ default = [\"*.internal.test\"] }}\n",
            file.display()
        ));
        std::fs::write(&config, text).unwrap();
    };
    add(
        "allow",
        &crate::support::plugin_component("allowlist-validator"),
    );
    let status = stdout_of(acmegate(dir.path()).args(["plugins", "status"]));
    assert!(
        status.contains("allow\tchallenge-validator\tallowlist-validator"),
        "{status}"
    );
    assert!(status.contains("sha256:"), "{status}");

    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"not wasm at all").unwrap();
    add("broken", &broken);
    let out = acmegate(dir.path())
        .args(["plugins", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("allow\tchallenge-validator"), "{text}");
    assert!(
        text.contains("broken\tFAILED") && text.contains("not a WebAssembly file"),
        "{text}"
    );
}

/// `admin-cert issue --role auditor` writes an identity whose subject OU gives the read-only
/// role, and says where the console is.
#[test]
fn admin_cert_issue_writes_an_auditor_identity() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout_of(acmegate(dir.path()).args([
        "admin-cert",
        "issue",
        "--cn",
        "inspector",
        "--role",
        "auditor",
        "--out",
        "inspector",
    ]));
    assert!(
        out.contains("issued auditor identity \"inspector\""),
        "{out}"
    );
    assert!(out.contains("identity.p12"), "{out}");
    assert!(out.contains("https://localhost:9443/console/"), "{out}");
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(dir.path().join("inspector/cert.pem"))
        .output()
        .unwrap();
    let subject = String::from_utf8_lossy(&subject.stdout);
    assert!(
        subject.contains("OU = acmegate-auditor") && subject.contains("CN = inspector"),
        "{subject}"
    );
    assert!(dir.path().join("inspector/identity.p12").is_file());
}
