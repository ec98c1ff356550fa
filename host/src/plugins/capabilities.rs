//! The host side of the capability interfaces (`log`, `clock`, `random`, `state`, `secrets`,
//! and the network ones), with the per-plugin grants that decide each call.
//!
//! Deny by default: [`Grants::default`] grants nothing, and every capability checks its grant
//! on each call and answers `denied` with the name of the grant that would allow it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::wit::{
    clock, commands, dns, files, http, log, random, secrets, smtp, state, tls_probe, types, zmq,
};
use super::limits::{LOG_LINES_PER_CALL, LOG_LINE_MAX_BYTES, RANDOM_MAX_BYTES};
use types::CapabilityError;

/// What the operator grants one plugin. Every field defaults to nothing granted.
///
/// - `log`: write to the gateway's log (budgeted per call);
/// - `clock`, `random`: wall/monotonic time and secure random bytes;
/// - `state`: the plugin's own key-value store;
/// - `http_hosts`: host names (exact, or `*.zone`) it may reach over HTTPS;
/// - `http_plain`: plain `http://` URLs too;
/// - `http_private`: hosts that resolve to loopback, private, link-local or other
///   non-public addresses (refused by default, checked on the address actually dialled);
/// - `http_ca_files`: PEM files of the CAs HTTPS servers are checked against (default: the
///   system's bundle);
/// - `dns`, `tls_probe`: lookups through the gateway's resolver, TLS handshakes;
/// - `zmq_endpoints`: exact ZeroMQ endpoints (e.g. `tcp://ca.internal:5000`);
/// - `secrets`: named secrets, by name;
/// - `files_dir`: the one directory whose files the plugin may read and replace
///   (`files` capability, see [`super::files`]);
/// - `commands`: named argv lists the plugin may run by name (`commands` capability, see
///   [`super::commands`]), e.g. `reload-nginx = ["nginx", "-s", "reload"]`;
/// - `smtp`: the mail relay, sender and recipients of the `smtp` capability (see
///   [`super::smtp_client`]).
///
/// WASI is linked for guests built for it, with no files, environment, network or stdio.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    pub log: bool,
    pub clock: bool,
    pub random: bool,
    pub state: bool,
    pub http_hosts: Vec<String>,
    pub http_plain: bool,
    pub http_private: bool,
    pub http_ca_files: Vec<std::path::PathBuf>,
    pub dns: bool,
    /// TLS probes to any host and port. Prefer `tls_probe_hosts`.
    pub tls_probe: bool,
    /// TLS probes only to these: `host`, `*.zone` (any name below it), each optionally with
    /// `:port` (`[v6]:port` for an IPv6 address); without a port, any port.
    pub tls_probe_hosts: Vec<String>,
    pub zmq_endpoints: Vec<String>,
    pub secrets: BTreeMap<String, SecretValue>,
    pub files_dir: Option<std::path::PathBuf>,
    pub commands: BTreeMap<String, Vec<String>>,
    pub smtp: Option<super::smtp_client::SmtpGrant>,
}

/// A secret given to a plugin; its `Debug` never shows the value.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must hand it on (a relay's password).
    pub(crate) fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Per-call log accounting.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    pub(crate) written: u32,
    pub(crate) dropped: u64,
}

/// Per-call memory limit, installed as the store's resource limiter. Records whether the
/// guest hit it, so that the trap a failed allocation causes is reported as out-of-memory.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    pub(crate) exceeded: bool,
}

/// Table elements per table; Rust and Python guests use a few thousand at most.
const TABLE_MAX_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_MAX_ELEMENTS)
    }
}

/// Per-call CPU accounting in epoch ticks (see `limits::EPOCH_TICK`).
#[derive(Debug)]
pub(crate) struct CpuMeter {
    pub(crate) budget_ticks: u64,
    pub(crate) used_ticks: u64,
    pub(crate) exhausted: bool,
}

/// The data of one call's `Store`: who the plugin is, what it may do, and the call's meters.
pub(crate) struct HostState {
    pub(crate) plugin: Arc<str>,
    pub(crate) grants: Arc<Grants>,
    pub(crate) kv: Arc<super::state::KvState>,
    /// The resolver of the `dns` capability.
    pub(crate) dns: Arc<super::dns_client::PluginDns>,
    pub(crate) memory: MemoryLimiter,
    pub(crate) cpu: CpuMeter,
    pub(crate) log: LogBudget,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl fmt::Debug for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostState")
            .field("plugin", &self.plugin)
            .field("memory", &self.memory)
            .field("cpu", &self.cpu)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<str>,
        grants: Arc<Grants>,
        kv: Arc<super::state::KvState>,
        dns: Arc<super::dns_client::PluginDns>,
        memory_limit: usize,
        cpu_ticks: u64,
    ) -> Self {
        Self {
            plugin,
            grants,
            kv,
            dns,
            memory: MemoryLimiter {
                limit: memory_limit,
                exceeded: false,
            },
            cpu: CpuMeter {
                budget_ticks: cpu_ticks,
                used_ticks: 0,
                exhausted: false,
            },
            log: LogBudget::default(),
            // Grants nothing: no preopened directories, no environment, no arguments, stdio
            // closed, and no socket address allowed.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        }
    }

    fn denied(&self, what: &str, grant: &str) -> CapabilityError {
        CapabilityError::Denied(format!(
            "{what} is not granted to plugin {}; the operator can allow it with `{grant}` in \
             its grants",
            self.plugin
        ))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String) {
        if !self.grants.log {
            return;
        }
        if self.log.written >= LOG_LINES_PER_CALL {
            self.log.dropped += 1;
            return;
        }
        self.log.written += 1;
        let line = sanitize_line(&message);
        let plugin = &*self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{line}"),
            log::Level::Debug => tracing::debug!(plugin, "{line}"),
            log::Level::Info => tracing::info!(plugin, "{line}"),
            log::Level::Warn => tracing::warn!(plugin, "{line}"),
            log::Level::Error => tracing::error!(plugin, "{line}"),
        }
    }
}

/// One log line from a plugin: control characters (newlines that would forge log lines)
/// become spaces, and the line is cut at [`LOG_LINE_MAX_BYTES`] on a character boundary.
pub fn sanitize_line(message: &str) -> String {
    let mut end = message.len().min(LOG_LINE_MAX_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut line: String = message[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if end < message.len() {
        line.push_str(" [truncated]");
    }
    line
}

/// The start of the monotonic clock plugins see; only differences are meaningful.
fn monotonic_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl clock::Host for HostState {
    async fn now(&mut self) -> Result<types::Timestamp, CapabilityError> {
        if !self.grants.clock {
            return Err(self.denied("the clock", "clock = true"));
        }
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| CapabilityError::Failed(format!("system clock before 1970: {e}")))?;
        Ok(i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
    }

    async fn monotonic_nanos(&mut self) -> Result<u64, CapabilityError> {
        if !self.grants.clock {
            return Err(self.denied("the clock", "clock = true"));
        }
        let nanos = monotonic_origin().elapsed().as_nanos();
        Ok(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl random::Host for HostState {
    async fn bytes(&mut self, len: u32) -> Result<Vec<u8>, CapabilityError> {
        if !self.grants.random {
            return Err(self.denied("random bytes", "random = true"));
        }
        if len > RANDOM_MAX_BYTES {
            return Err(CapabilityError::Invalid(format!(
                "at most {RANDOM_MAX_BYTES} random bytes per call"
            )));
        }
        let mut buf = vec![0u8; len as usize];
        // rand's thread RNG is a CSPRNG reseeded from the operating system.
        rand::fill(buf.as_mut_slice());
        Ok(buf)
    }
}

impl state::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, CapabilityError> {
        self.state_granted()?;
        self.kv.get(key).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), CapabilityError> {
        self.state_granted()?;
        self.kv.set(key, value).await
    }

    async fn delete(&mut self, key: String) -> Result<(), CapabilityError> {
        self.state_granted()?;
        self.kv.delete(key).await
    }

    async fn keys(&mut self, prefix: String) -> Result<Vec<String>, CapabilityError> {
        self.state_granted()?;
        self.kv.keys(prefix).await
    }
}

impl HostState {
    fn state_granted(&self) -> Result<(), CapabilityError> {
        if self.grants.state {
            Ok(())
        } else {
            Err(self.denied("key-value state", "state = true"))
        }
    }

    /// A denial naming the grant that would allow the request, or the URL's fault.
    fn http_refused(&self, refusal: HttpRefusal) -> CapabilityError {
        match refusal {
            HttpRefusal::Invalid(detail) => CapabilityError::Invalid(detail),
            HttpRefusal::Host(host) => self.denied(
                &format!("HTTP to {host}"),
                &format!("http_hosts = [\"{host}\"]"),
            ),
            HttpRefusal::Plain => self.denied("plain http://", "http_plain = true"),
        }
    }
}

/// The grant a component's import of the contract needs, as an operator writes it in
/// `[plugins.grants]` (`acmegate plugins inspect`); `None` for an import that needs none (the
/// shared types) or is not the contract's (WASI, which the sandbox answers with nothing).
pub fn grant_needed(import: &str) -> Option<&'static str> {
    let interface = import.strip_prefix("acmegate:plugin/")?.split('@').next()?;
    Some(match interface {
        "log" => "log = true",
        "clock" => "clock = true",
        "random" => "random = true",
        "state" => "state = true",
        "http" => "http_hosts = [\"HOST\"] (and http_plain, http_private, http_ca_files as needed)",
        "dns" => "dns = true",
        "tls-probe" => "tls_probe_hosts = [\"HOST:PORT\"]",
        "zmq" => "zmq_endpoints = [\"tcp://HOST:PORT\"]",
        "secrets" => "secrets = { NAME = \"...\" }",
        "files" => "files_dir = \"/DIRECTORY\"",
        "commands" => "commands = { NAME = [\"PROGRAM\", \"ARGUMENT\"] }",
        "smtp" => {
            "smtp = { server = \"HOST:PORT\", from = \"ADDRESS\", recipients = [\"ADDRESS\"] }"
        }
        _ => return None,
    })
}

/// Why a plugin's HTTP request is refused before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpRefusal {
    /// Not an http or https URL with a host.
    Invalid(String),
    /// The host is not in `http_hosts`.
    Host(String),
    /// `http://` without `http_plain`.
    Plain,
}

/// Whether `host` (lower-case) is `pattern`, or below it for a `*.zone` pattern.
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(zone) => host.len() > zone.len() + 1 && host.ends_with(&format!(".{zone}")),
        None => host == pattern,
    }
}

/// A `tls_probe_hosts` entry as host pattern and port (`None`: any).
fn host_and_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((v6, after)) = rest.split_once(']') {
            return (v6, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

impl Grants {
    /// Checks what deserializing cannot: `files_dir` is an absolute path (a relative one
    /// would depend on the gateway's working directory), and every command has a program.
    /// The error names the key and the value.
    pub fn check(&self) -> Result<(), String> {
        if let Some(dir) = &self.files_dir {
            if !dir.is_absolute() {
                return Err(format!(
                    "files_dir = {:?} must be an absolute path",
                    dir.display().to_string()
                ));
            }
        }
        if let Some(smtp) = &self.smtp {
            smtp.check()?;
        }
        for (name, argv) in &self.commands {
            if argv.first().is_none_or(|program| program.is_empty()) {
                return Err(format!(
                    "commands.{name} = {argv:?} must name a program, then its arguments"
                ));
            }
        }
        Ok(())
    }

    /// Whether a TLS probe to `host`:`port` is granted: `tls_probe = true` for any, else an
    /// entry of `tls_probe_hosts` that names the host (or its zone) and the port (or none).
    pub fn tls_probe_allowed(&self, host: &str, port: u16) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.tls_probe
            || self.tls_probe_hosts.iter().any(|entry| {
                let (pattern, allowed_port) = host_and_port(entry);
                host_matches(pattern, &host) && allowed_port.is_none_or(|p| p == port)
            })
    }

    /// The URL a plugin may send an HTTP request to: http or https, its host in `http_hosts`
    /// (exact, or below a `*.zone`), plain http only with `http_plain`. The URL is parsed once,
    /// here, and the client connects to the host of what this returns, so the check and the
    /// connection cannot read one string two ways. Whether the address is public is decided
    /// after resolution (`http_client`). Pure, for the `plugin_answers` fuzz target.
    pub fn http_url(&self, url: &str) -> Result<url::Url, HttpRefusal> {
        let parsed =
            url::Url::parse(url).map_err(|e| HttpRefusal::Invalid(format!("bad URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HttpRefusal::Invalid("only http and https URLs".into()));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| HttpRefusal::Invalid("URL without a host".into()))?
            .to_ascii_lowercase();
        if !self
            .http_hosts
            .iter()
            .any(|pattern| host_matches(pattern, &host))
        {
            return Err(HttpRefusal::Host(host));
        }
        if parsed.scheme() == "http" && !self.http_plain {
            return Err(HttpRefusal::Plain);
        }
        Ok(parsed)
    }
}

/// The answer of a granted network capability whose client is not in this build yet.
impl http::Host for HostState {
    async fn send(&mut self, request: http::Request) -> Result<http::Response, CapabilityError> {
        let url = self
            .grants
            .http_url(&request.url)
            .map_err(|refusal| self.http_refused(refusal))?;
        super::http_client::send(&self.grants, url, request)
            .await
            .map_err(|e| match e {
                super::http_client::HttpError::Private(addr) => self.denied(
                    &format!("HTTP to the non-public address {addr}"),
                    "http_private = true",
                ),
                super::http_client::HttpError::Capability(e) => e,
            })
    }
}

impl dns::Host for HostState {
    async fn lookup(
        &mut self,
        name: String,
        record_type: dns::RecordType,
    ) -> Result<Vec<String>, CapabilityError> {
        if !self.grants.dns {
            return Err(self.denied("DNS lookups", "dns = true"));
        }
        self.dns.lookup(&name, record_type).await
    }
}

impl tls_probe::Host for HostState {
    async fn probe(
        &mut self,
        request: tls_probe::ProbeRequest,
    ) -> Result<tls_probe::ProbeResult, CapabilityError> {
        if !self.grants.tls_probe_allowed(&request.host, request.port) {
            let target = if request.host.contains(':') {
                format!("[{}]:{}", request.host, request.port)
            } else {
                format!("{}:{}", request.host, request.port)
            };
            return Err(self.denied(
                &format!("TLS probes to {target}"),
                &format!("tls_probe_hosts = [\"{target}\"]"),
            ));
        }
        super::tls_client::probe(request).await
    }
}

impl zmq::Host for HostState {
    async fn request(
        &mut self,
        endpoint: String,
        parts: Vec<Vec<u8>>,
        timeout_ms: u32,
    ) -> Result<Vec<Vec<u8>>, CapabilityError> {
        if !self.grants.zmq_endpoints.contains(&endpoint) {
            return Err(self.denied(
                &format!("ZeroMQ to {endpoint}"),
                &format!("zmq_endpoints = [\"{endpoint}\"]"),
            ));
        }
        let timeout = std::time::Duration::from_millis(timeout_ms.into());
        super::zmq_client::request(endpoint, parts, timeout).await
    }
}

impl secrets::Host for HostState {
    async fn get(&mut self, name: String) -> Result<Vec<u8>, CapabilityError> {
        match self.grants.secrets.get(&name) {
            Some(secret) => Ok(secret.0.as_bytes().to_vec()),
            None => Err(self.denied(
                &format!("secret {name:?}"),
                &format!("secrets.{name} = \"...\""),
            )),
        }
    }
}

impl files::Host for HostState {
    async fn write(
        &mut self,
        path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> Result<(), CapabilityError> {
        let dir = self.files_dir()?;
        super::files::write(dir, path, contents, mode).await
    }

    async fn read(&mut self, path: String) -> Result<Option<Vec<u8>>, CapabilityError> {
        let dir = self.files_dir()?;
        super::files::read(dir, path).await
    }
}

impl commands::Host for HostState {
    async fn run(
        &mut self,
        name: String,
        timeout_ms: u32,
    ) -> Result<commands::Output, CapabilityError> {
        let Some(argv) = self.grants.commands.get(&name) else {
            return Err(self.denied(
                &format!("the command {name:?}"),
                &format!("commands.{name} = [\"PROGRAM\", ...]"),
            ));
        };
        super::commands::run(&self.plugin, &name, argv, timeout_ms).await
    }
}

impl smtp::Host for HostState {
    async fn send(&mut self, message: smtp::Message) -> Result<String, CapabilityError> {
        let Some(grant) = self.grants.smtp.clone() else {
            return Err(self.denied(
                "e-mail",
                "smtp = { server = \"HOST:PORT\", from = \"...\", recipients = [...] }",
            ));
        };
        super::smtp_client::send(&self.plugin, &grant, message).await
    }
}

impl HostState {
    fn files_dir(&self) -> Result<std::path::PathBuf, CapabilityError> {
        self.grants
            .files_dir
            .clone()
            .ok_or_else(|| self.denied("files", "files_dir = \"/DIRECTORY\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(grants: Grants) -> HostState {
        state_with_dns(grants, None)
    }

    fn state_with_dns(grants: Grants, dns: Option<std::net::SocketAddr>) -> HostState {
        HostState::new(
            "p".into(),
            Arc::new(grants),
            super::super::state::KvRegistry::new(None).for_plugin("p"),
            Arc::new(super::super::dns_client::PluginDns::new(dns)),
            1 << 20,
            10,
        )
    }

    /// Lookups go to the gateway's resolver and answer in presentation format; NXDOMAIN is an
    /// empty answer, SERVFAIL an error.
    #[tokio::test]
    async fn dns_answers_through_the_gateway_resolver() {
        use acmegate_testkit::dns::TestDnsServer;
        // No default address: names without records are answered NXDOMAIN.
        let server = TestDnsServer::start().await.unwrap().with_default_a(None);
        server.set_a("host.test", std::net::Ipv4Addr::new(192, 0, 2, 7));
        server.add_txt("_acme-challenge.host.test", "token-value");
        server.set_servfail("broken.test");
        let mut denied = state_with_dns(Grants::default(), Some(server.addr()));
        assert!(matches!(
            dns::Host::lookup(&mut denied, "host.test".into(), dns::RecordType::A).await,
            Err(CapabilityError::Denied(d)) if d.contains("dns = true")
        ));
        let grants = Grants {
            dns: true,
            ..Grants::default()
        };
        let mut s = state_with_dns(grants, Some(server.addr()));
        let mut lookup =
            async |name: &str, kind| dns::Host::lookup(&mut s, name.into(), kind).await;
        assert_eq!(
            lookup("host.test", dns::RecordType::A).await.unwrap(),
            ["192.0.2.7"]
        );
        assert_eq!(
            lookup("_acme-challenge.host.test", dns::RecordType::Txt)
                .await
                .unwrap(),
            ["token-value"]
        );
        assert!(lookup("missing.test", dns::RecordType::A)
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            lookup("broken.test", dns::RecordType::A).await,
            Err(CapabilityError::Failed(_))
        ));
        assert!(matches!(
            lookup("", dns::RecordType::A).await,
            Err(CapabilityError::Invalid(_))
        ));
    }

    /// A probe completes a handshake with the ALPN and SNI asked for and returns what the
    /// server presented, unverified.
    #[tokio::test]
    async fn tls_probe_returns_the_presented_chain() {
        use crate::va::test_support::{tls_server, AcmeCert, San};
        let spec = AcmeCert {
            sans: vec![San::Dns("probe.test")],
            acme_identifier: None,
        };
        let (port, sni) = tls_server(&spec, &[b"acme-tls/1"], &[&rustls::version::TLS13]).await;
        let request = |server_name: &str, port: u16| tls_probe::ProbeRequest {
            host: "127.0.0.1".into(),
            port,
            server_name: server_name.into(),
            alpn: vec!["acme-tls/1".into()],
            timeout_ms: 5_000,
        };
        let mut denied = state(Grants::default());
        assert!(matches!(
            tls_probe::Host::probe(&mut denied, request("probe.test", port)).await,
            Err(CapabilityError::Denied(_))
        ));
        let mut other_port = state(Grants {
            tls_probe_hosts: vec![format!("127.0.0.1:{}", port.wrapping_add(1))],
            ..Grants::default()
        });
        match tls_probe::Host::probe(&mut other_port, request("probe.test", port)).await {
            Err(CapabilityError::Denied(detail)) => assert!(
                detail.contains(&format!("tls_probe_hosts = [\"127.0.0.1:{port}\"]")),
                "{detail}"
            ),
            other => panic!("a probe to an ungranted port: {other:?}"),
        }
        let mut s = state(Grants {
            tls_probe_hosts: vec![format!("127.0.0.1:{port}")],
            ..Grants::default()
        });
        let seen = tls_probe::Host::probe(&mut s, request("probe.test", port))
            .await
            .unwrap();
        assert_eq!(seen.alpn.as_deref(), Some("acme-tls/1"));
        assert_eq!(seen.protocol_version, "TLSv1.3");
        assert_eq!(seen.chain.len(), 1);
        let info = crate::ca::certificate_info(&seen.chain[0]).unwrap();
        assert_eq!(info.dns_names, ["probe.test"]);
        // Without a server name no SNI is sent.
        tls_probe::Host::probe(&mut s, request("", port))
            .await
            .unwrap();
        assert_eq!(*sni.lock().unwrap(), [Some("probe.test".to_string()), None]);
        let refused = crate::va::test_support::refused_port().await;
        let mut any = state(Grants {
            tls_probe: true,
            ..Grants::default()
        });
        assert!(matches!(
            tls_probe::Host::probe(&mut any, request("probe.test", refused)).await,
            Err(CapabilityError::Failed(_))
        ));
    }

    /// `tls_probe_hosts` entries: exact hosts and zones, with or without a port, IPv6 in
    /// brackets; `tls_probe = true` allows any.
    #[test]
    fn tls_probe_hosts_name_hosts_zones_and_ports() {
        let grants = Grants {
            tls_probe_hosts: vec![
                "edge.example:443".into(),
                "*.svc.example".into(),
                "[::1]:8443".into(),
                "10.0.0.5".into(),
            ],
            ..Grants::default()
        };
        for (host, port) in [
            ("edge.example", 443),
            ("EDGE.example", 443),
            ("a.b.svc.example", 1),
            ("::1", 8443),
            ("[::1]", 8443),
            ("10.0.0.5", 9),
        ] {
            assert!(grants.tls_probe_allowed(host, port), "{host}:{port}");
        }
        for (host, port) in [
            ("edge.example", 8443),
            ("x.edge.example", 443),
            ("svc.example", 443),
            ("::1", 443),
            ("10.0.0.6", 9),
        ] {
            assert!(!grants.tls_probe_allowed(host, port), "{host}:{port}");
        }
        let any = Grants {
            tls_probe: true,
            ..Grants::default()
        };
        assert!(any.tls_probe_allowed("anything.example", 1));
    }

    #[test]
    fn log_lines_lose_control_characters_and_are_cut_on_a_char_boundary() {
        assert_eq!(sanitize_line("a\nforged line\r\t"), "a forged line  ");
        let long = "é".repeat(LOG_LINE_MAX_BYTES);
        let cut = sanitize_line(&long);
        assert!(cut.ends_with(" [truncated]"));
        assert!(cut.len() <= LOG_LINE_MAX_BYTES + " [truncated]".len());
    }

    #[test]
    fn http_hosts_match_exactly_or_below_a_zone() {
        let grants = Grants {
            http_hosts: vec!["api.example".into(), "*.svc.example".into()],
            http_plain: true,
            ..Grants::default()
        };
        let url = grants.http_url("https://API.example/x").unwrap();
        assert_eq!(url.host_str(), Some("api.example"));
        assert!(grants.http_url("http://a.b.svc.example:8080/").is_ok());
        for denied in [
            "https://svc.example/",
            "https://evilsvc.example/",
            "https://x.api.example/",
            // Userinfo is not the host: the request would go to evil.example.
            "https://api.example@evil.example/",
        ] {
            assert!(
                matches!(grants.http_url(denied), Err(HttpRefusal::Host(_))),
                "{denied}"
            );
        }
        assert!(matches!(
            grants.http_url("file:///etc/passwd"),
            Err(HttpRefusal::Invalid(_))
        ));
        let no_plain = Grants {
            http_plain: false,
            ..grants
        };
        assert_eq!(
            no_plain.http_url("http://api.example/"),
            Err(HttpRefusal::Plain)
        );
    }

    /// Plain http and non-public addresses each need their own grant, named in the denial.
    #[tokio::test]
    async fn http_needs_plain_and_private_grants() {
        let request = |url: &str| http::Request {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: 1000,
        };
        let mut hosts_only = state(Grants {
            http_hosts: vec!["127.0.0.1".into()],
            ..Grants::default()
        });
        let plain = http::Host::send(&mut hosts_only, request("http://127.0.0.1:9/")).await;
        assert!(matches!(&plain, Err(CapabilityError::Denied(m)) if m.contains("http_plain")));
        let private = http::Host::send(&mut hosts_only, request("https://127.0.0.1:9/")).await;
        assert!(
            matches!(&private, Err(CapabilityError::Denied(m)) if m.contains("http_private")),
            "{private:?}"
        );
        let mut granted = state(Grants {
            http_hosts: vec!["127.0.0.1".into()],
            http_plain: true,
            http_private: true,
            ..Grants::default()
        });
        // Allowed through; nothing listens on port 9, so the connection itself fails.
        let refused = http::Host::send(&mut granted, request("http://127.0.0.1:9/")).await;
        assert!(
            matches!(&refused, Err(CapabilityError::Failed(m)) if m.contains("connect")),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn capabilities_answer_denied_unless_granted() {
        use clock::Host as _;
        use random::Host as _;
        use state::Host as _;
        let mut none = state(Grants::default());
        assert!(matches!(none.now().await, Err(CapabilityError::Denied(_))));
        assert!(matches!(
            none.bytes(16).await,
            Err(CapabilityError::Denied(_))
        ));
        assert!(matches!(
            state::Host::get(&mut none, "k".into()).await,
            Err(CapabilityError::Denied(_))
        ));
        assert!(matches!(
            secrets::Host::get(&mut none, "token".into()).await,
            Err(CapabilityError::Denied(_))
        ));

        let mut all = state(Grants {
            clock: true,
            random: true,
            state: true,
            secrets: BTreeMap::from([("token".into(), SecretValue::new("s3"))]),
            ..Grants::default()
        });
        assert!(all.now().await.unwrap() > 1_700_000_000);
        assert_eq!(all.bytes(16).await.unwrap().len(), 16);
        assert!(matches!(
            all.bytes(RANDOM_MAX_BYTES + 1).await,
            Err(CapabilityError::Invalid(_))
        ));
        all.set("a/1".into(), b"x".to_vec()).await.unwrap();
        all.set("b/1".into(), b"y".to_vec()).await.unwrap();
        assert_eq!(all.keys("a/".into()).await.unwrap(), ["a/1"]);
        assert_eq!(
            state::Host::get(&mut all, "b/1".into()).await.unwrap(),
            Some(b"y".to_vec())
        );
        assert_eq!(
            secrets::Host::get(&mut all, "token".into()).await.unwrap(),
            b"s3"
        );
    }
}
