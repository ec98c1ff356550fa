//! The real uPKI CA (`upki-ca` from PyPI, see `upki_ca_venv.sh`) as a child process on free
//! ports of 127.0.0.1, with its own HOME and data directory, for the `upki-issuer` tests:
//! started by our launcher (`upki_ca_launcher.py`), stopped and started again on the same
//! data, paused (a CA that hangs), and asked directly over ZeroMQ what it holds.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// How long the CA may take to be ready: its first start generates a 4096-bit RSA key, and
/// the machine is busy with the rest of the suite.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a direct query waits for the CA's answer.
const QUERY_TIMEOUT_MS: i32 = 10_000;
/// Port pairs tried before giving up: another test may take a port between our check and
/// the CA's bind.
const PORT_ATTEMPTS: usize = 5;

/// A running uPKI CA; killed (its whole process group) when dropped.
pub struct UpkiCa {
    /// `tcp://127.0.0.1:<port>` of the main socket.
    pub main: String,
    /// `tcp://127.0.0.1:<port + 1>` of the registration socket.
    pub registration: String,
    port: u16,
    seed: String,
    /// HOME of the CA: it keeps its key in `.upki/ca` below, where its data dir is too.
    home: tempfile::TempDir,
    child: Option<Child>,
}

/// The venv's Python (`upki_ca_venv.sh`), created on first use.
fn python() -> PathBuf {
    crate::support::installed_tool("upki_ca_venv.sh", "upki-venv").join("bin/python")
}

/// Two consecutive ports that were free a moment ago.
fn free_port_pair() -> u16 {
    crate::support::free_ports(2)
}

/// Sends `signal` (a `kill` name: KILL, STOP, CONT) to the process group `pgid`; false when
/// no process of the group is left.
fn signal_group(pgid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Lower-case hex without leading zeros, as the gateway stores serials.
pub fn hex(n: &openssl::bn::BigNumRef) -> String {
    let hex = n.to_hex_str().expect("hex").to_ascii_lowercase();
    match hex.trim_start_matches('0') {
        "" => "0".into(),
        digits => digits.into(),
    }
}

impl UpkiCa {
    /// Starts a fresh CA with registration `seed` on two free consecutive ports.
    pub fn start(seed: &str) -> UpkiCa {
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port_pair();
            let mut ca = UpkiCa {
                main: format!("tcp://127.0.0.1:{port}"),
                registration: format!("tcp://127.0.0.1:{}", port + 1),
                port,
                seed: seed.into(),
                home: tempfile::tempdir().expect("tempdir"),
                child: None,
            };
            match ca.spawn() {
                Ok(()) => return ca,
                // Most likely a port taken meanwhile: another pair, on fresh data.
                Err(log) => last_log = log,
            }
        }
        panic!("the uPKI CA did not start in {PORT_ATTEMPTS} attempts; last log:\n{last_log}");
    }

    fn data_dir(&self) -> PathBuf {
        self.home.path().join(".upki/ca")
    }

    fn log_path(&self) -> PathBuf {
        self.home.path().join("ca.log")
    }

    /// Spawns the launcher and waits until it says both sockets are bound. `Err` holds the
    /// CA's output when it exited or did not get ready in time (then it is killed).
    fn spawn(&mut self) -> Result<(), String> {
        let log_path = self.log_path();
        // Appended to across restarts: one file tells the CA's whole story.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("CA log file");
        let start = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/upki_ca_launcher.py");
        let child = Command::new(python())
            .arg(launcher)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--seed", &self.seed])
            .env("HOME", self.home.path())
            .env("UPKI_CA_HOST", "127.0.0.1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            // Its own process group, so that Drop kills everything it started.
            .process_group(0)
            .spawn()
            .expect("the uPKI CA launcher starts");
        self.child = Some(child);
        let ready = format!("upki-ca ready {} {}", self.main, self.registration);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let text = std::fs::read(&log_path).unwrap_or_default();
            let ours =
                String::from_utf8_lossy(&text[usize::try_from(start).unwrap_or(0)..]).into_owned();
            if ours.lines().any(|l| l == ready) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                self.kill();
                return Err(format!("exit: {exited:?}\n{ours}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the CA's process group and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Once reaped, its id may be anyone's: signal only a launcher still there.
            if matches!(child.try_wait(), Ok(None)) {
                signal_group(child.id(), "KILL");
            }
            let _ = child.wait();
        }
    }

    fn pgid(&self) -> u32 {
        self.child.as_ref().expect("the CA is running").id()
    }

    /// Kills the CA (SIGKILL): clients get connection refused. Its data dir stays.
    pub fn stop(&mut self) {
        assert!(self.child.is_some(), "the CA is already stopped");
        self.kill();
    }

    /// Starts the CA again on the same data dir and ports, after [`UpkiCa::stop`]: it keeps
    /// its key and the certificates it issued, and forgets registrations (it holds them in
    /// memory only).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the CA is still running");
        if let Err(log) = self.spawn() {
            panic!(
                "the uPKI CA did not start again on port {}:\n{log}",
                self.port
            );
        }
    }

    /// Stops the CA's processes (SIGSTOP): connections are accepted by the kernel and then
    /// nothing answers, as with a CA that hangs.
    pub fn pause(&self) {
        assert!(signal_group(self.pgid(), "STOP"), "the CA cannot be paused");
    }

    /// Resumes a paused CA (SIGCONT).
    pub fn resume(&self) {
        assert!(
            signal_group(self.pgid(), "CONT"),
            "the CA cannot be resumed"
        );
    }

    /// One task at `endpoint` on a fresh REQ socket; the reply's text.
    fn request(&self, endpoint: &str, task: &str, params: Value) -> String {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::REQ).expect("REQ socket");
        socket.set_linger(0).expect("linger");
        socket.set_rcvtimeo(QUERY_TIMEOUT_MS).expect("rcvtimeo");
        socket.connect(endpoint).expect("connect");
        let request = json!({"TASK": task, "params": params}).to_string();
        socket.send(request.as_bytes(), 0).expect("send");
        let reply = socket
            .recv_string(0)
            .unwrap_or_else(|e| panic!("the uPKI CA did not answer {task} at {endpoint}: {e}"));
        reply.expect("the CA answers UTF-8")
    }

    /// The `DATA` of an `ANSWER`, or the `MSG` of an `UPKI ERROR`. Big integers in `DATA` lose
    /// precision (serde_json reads them as floats): see [`UpkiCa::newest_serial`].
    fn task(&self, endpoint: &str, task: &str, params: Value) -> Result<Value, String> {
        let reply: Value = serde_json::from_str(&self.request(endpoint, task, params))
            .expect("the CA answers JSON");
        match reply["EVENT"].as_str() {
            Some("ANSWER") => Ok(reply["DATA"].clone()),
            _ => Err(reply["MSG"].as_str().unwrap_or_default().to_string()),
        }
    }

    /// A main-port task that must succeed.
    fn answer(&self, task: &str, params: Value) -> Value {
        self.task(&self.main, task, params)
            .unwrap_or_else(|e| panic!("the uPKI CA refused {task}: {e}"))
    }

    /// The CA certificate, PEM (`get_ca`).
    pub fn get_ca(&self) -> String {
        self.answer("get_ca", Value::Null)
            .as_str()
            .expect("get_ca answers PEM")
            .to_string()
    }

    /// The CA's public key, to check what it signed.
    pub fn public_key(&self) -> openssl::pkey::PKey<openssl::pkey::Public> {
        openssl::x509::X509::from_pem(self.get_ca().as_bytes())
            .and_then(|ca| ca.public_key())
            .expect("the CA certificate and its key")
    }

    /// What the CA says of the newest certificate of the CN `cn` (`view`), or its error
    /// message (`[300] Certificate not found: <cn>`).
    pub fn view(&self, cn: &str) -> Result<Value, String> {
        self.task(&self.main, "view", json!({"dn": cn}))
    }

    /// The serial of the newest certificate of `cn`, in the gateway's hex form. `view` gives it
    /// as a JSON integer of up to 160 bits, so it is read from the reply's text.
    pub fn newest_serial(&self, cn: &str) -> String {
        let text = self.request(&self.main, "view", json!({"dn": cn}));
        let digits: String = text
            .split_once("\"serial_number\":")
            .unwrap_or_else(|| panic!("no serial_number in view of {cn}: {text}"))
            .1
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        hex(&openssl::bn::BigNum::from_dec_str(&digits).expect("decimal serial"))
    }

    /// Revokes the newest certificate of `cn` at the CA directly, as a client of the CA other
    /// than the gateway would (or as the gateway did before its answer was lost).
    pub fn revoke(&self, cn: &str, reason: &str) {
        self.answer("revoke", json!({"dn": cn, "reason": reason}));
    }

    /// The CA's stored CRL, DER (`get_crl`).
    pub fn get_crl(&self) -> Vec<u8> {
        let b64 = self.answer("get_crl", Value::Null);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("get_crl answers base64"))
            .expect("base64 CRL")
    }

    /// `status` of `cn` on the registration port: `registered` or `not_registered`.
    pub fn registration_status(&self, cn: &str) -> String {
        self.task(&self.registration, "status", json!({"cn": cn}))
            .unwrap_or_else(|e| panic!("the uPKI CA refused status: {e}"))["status"]
            .as_str()
            .expect("a status")
            .to_string()
    }
}

impl Drop for UpkiCa {
    fn drop(&mut self) {
        // SIGKILL, not SIGTERM: the CA takes seconds to stop its listeners, and its data dir
        // goes away with us anyway. A paused CA dies too.
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The launcher starts the real CA: its certificate answers, a restart on the same data
    /// keeps it, and a second start beside it gets other ports.
    #[test]
    fn launcher_starts_the_real_ca_and_restarts_it_on_its_data() {
        let mut ca = UpkiCa::start("seed");
        let pem = ca.get_ca();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert_eq!(
            ca.view("nobody.upki.test").unwrap_err(),
            "[300] Certificate not found: nobody.upki.test"
        );
        let other = UpkiCa::start("seed");
        assert_ne!(other.main, ca.main);
        assert_ne!(other.get_ca(), pem, "each CA has its own key");
        ca.stop();
        ca.start_again();
        assert_eq!(ca.get_ca(), pem, "the same key after a restart");
    }
}
