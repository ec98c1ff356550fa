//! Gateway configuration: a TOML file whose every key can be overridden by an `ACMEGATE_*`
//! environment variable (`ACMEGATE_SERVER_LISTEN` for `server.listen`), with defaults that let
//! `acmegate serve` run with no file at all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ca::Profile;

mod issuance;
mod managed;
mod retention;
mod targets;

pub use issuance::{IssuanceConfig, RetryPolicy};
pub use managed::ManagedConfig;
pub use retention::RetentionConfig;
pub use targets::{TargetConfig, DEFAULT_ATTEMPTS};

/// Environment variables with this prefix override configuration keys.
pub const ENV_PREFIX: &str = "ACMEGATE_";

/// Variables under the prefix that are not configuration keys.
const ENV_NOT_KEYS: [&str; 3] = ["ACMEGATE_CONFIG", "ACMEGATE_CA_PASSPHRASE", "ACMEGATE_LOG"];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("failed to read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {var} names no configuration key")]
    UnknownEnv { var: String },
    /// A key holds a value of the wrong type or out of range. `origin` says where the value
    /// came from (the file or the `ACMEGATE_*` variable), so the operator knows what to edit.
    #[error("{origin}: {key} = {value}: {reason}")]
    Value {
        origin: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database file (SQLite) and the CA live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; empty means `sqlite://<data_dir>/acmegate.db`.
    pub database_url: String,
    pub server: ServerConfig,
    pub ca: CaConfig,
    pub acme: AcmeConfig,
    pub validation: ValidationConfig,
    /// Certificate profiles; empty means the built-in `default` profile alone.
    pub profiles: Vec<Profile>,
    pub issuance: IssuanceConfig,
    /// Pruning of expired orders, authorizations and challenges.
    pub retention: RetentionConfig,
    /// WebAssembly plugins (`[[plugins]]`); issuer connectors are named by profiles.
    pub plugins: Vec<crate::plugins::PluginConfig>,
    /// Where issued certificates are deployed (`[[targets]]`), each through a
    /// `target-deployer` plugin.
    pub targets: Vec<TargetConfig>,
    /// Certificates the gateway keeps on its own (`[[managed]]`): issued, deployed to their
    /// targets and renewed without an ACME client.
    pub managed: Vec<ManagedConfig>,
    pub admin: AdminConfig,
    pub log: LogConfig,
}

/// How the gateway writes its logs (to stdout). Which events are logged is `ACMEGATE_LOG`'s
/// business, not a key: it is a filter read before any configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// One log event per line: readable text, or a JSON object for log collectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Read by hand rather than derived for a message in the words of the configuration reference
/// (the key and value are added by the loader, see [`ConfigError::Value`]).
impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected \"text\" or \"json\"".into()),
        }
    }
}

/// The mTLS admin API (`/api/v1/*` for admins, `/api/client/*` for services).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener; empty disables the admin API.
    pub listen: String,
    /// PEM files of further CAs whose client certificates are accepted (the gateway's own CA
    /// always is). Their revocations are not known to the gateway.
    pub client_ca_files: Vec<PathBuf>,
    /// Subject OUs that make a certificate an admin (`acmegate admin-cert issue` writes the
    /// first one).
    pub admin_units: Vec<String>,
    /// Subject OUs that make a certificate a client, which manages only itself.
    pub client_units: Vec<String>,
    /// Subject OUs that make a certificate an auditor: reads what an admin reads, changes
    /// nothing.
    pub auditor_units: Vec<String>,
    /// Subject common names that are admins, clients or auditors whatever their OU.
    pub admin_names: Vec<String>,
    pub client_names: Vec<String>,
    pub auditor_names: Vec<String>,
    /// Lifetime of the identities `admin-cert issue` writes and clients renew, in days.
    pub identity_validity_days: u32,
    /// Page size of listings when the request names none (at most 500).
    pub per_page: u32,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9443".into(),
            client_ca_files: Vec::new(),
            admin_units: vec!["acmegate-admin".into()],
            client_units: vec!["acmegate-client".into()],
            auditor_units: vec!["acmegate-auditor".into()],
            admin_names: Vec::new(),
            client_names: Vec::new(),
            auditor_names: Vec::new(),
            identity_validity_days: 365,
            per_page: 50,
        }
    }
}

impl AdminConfig {
    /// The bound address, `None` when the admin API is off.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the ACME HTTPS listener binds.
    pub listen: SocketAddr,
    /// The URL clients reach the gateway at; empty means `https://localhost:<port>`.
    pub base_url: String,
    /// Address of a plain-HTTP listener that serves only the CA certificates and CRLs, for
    /// RFC 5280 relying parties (which fetch them without TLS); empty: none.
    pub http_listen: String,
    /// The URL under which relying parties fetch the CA certificates and CRL, written into
    /// every certificate issued (CRL Distribution Points, Authority Information Access).
    /// Empty: `http://<base_url's host>:<http_listen's port>` when `http_listen` is set, else
    /// the base URL.
    pub pki_url: String,
    /// Names (DNS or IP) in the listener's TLS certificate, issued by the gateway's own CA.
    pub tls_names: Vec<String>,
    /// Largest request body accepted (RFC 8555 requests are small JWS objects).
    pub max_body_bytes: usize,
    /// Connections served at once on each listener (ACME, admin). Past it new connections
    /// wait in the kernel's accept queue until one closes, so a flood of idle or slow clients
    /// cannot exhaust the process's file descriptors or memory.
    pub max_connections: usize,
    /// Seconds a client has for its TLS handshake, for each request's headers, for a request
    /// body, and to start its next request on an idle keep-alive connection. A slower client
    /// is disconnected, so clients that send a byte at a time cannot hold connections open.
    pub client_timeout_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CaConfig {
    /// File holding the secret that encrypts the CA keys (created 0600 if absent). Ignored
    /// when `ACMEGATE_CA_PASSPHRASE` is set. Keep it off the data directory's backups.
    pub key_file: PathBuf,
    pub root_cn: String,
    pub intermediate_cn: String,
    pub organization: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// Directory `meta.termsOfService`; when set, newAccount requires agreement.
    pub terms_of_service: String,
    pub website: String,
    /// CAA issuer domain names of this CA (directory `meta.caaIdentities`, CAA checks).
    pub caa_identities: Vec<String>,
    /// RFC 8555 §7.3.4: refuse accounts without External Account Binding.
    pub eab_required: bool,
    /// DANGER: challenges succeed without any check. Only for trusted networks and benchmarks.
    pub auto_approve: bool,
    /// Profile used when newOrder names none.
    pub default_profile: String,
    pub order_lifetime_hours: u32,
    pub authz_lifetime_hours: u32,
    /// How long a valid authorization may be reused for revocation by another account.
    pub orders_per_page: u32,
    /// The Retry-After of a renewalInfo answer (RFC 9773 §4.3): how soon an ARI client asks
    /// again, so how soon a moved window reaches it. Six hours, as Let's Encrypt and Pebble.
    pub renewal_info_retry_after_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Port http-01 connects to (80 per RFC 8555 §8.3; change for tests or private networks).
    pub http01_port: u16,
    /// Port tls-alpn-01 connects to (443 per RFC 8737).
    pub tlsalpn01_port: u16,
    /// DNS server (`IP:port`) for dns-01, CAA and name lookups; empty uses the system resolver.
    pub dns_resolver: String,
    pub timeout_seconds: u64,
    pub max_concurrent: usize,
    /// RFC 8659 CAA checks for dns identifiers.
    pub caa: bool,
    /// Challenge type → challenge-validator plugin that decides it instead of the built-in
    /// check. A type that is not built in (`device-attest-01`) is offered when mapped.
    pub challenge_plugins: std::collections::BTreeMap<String, String>,
    /// A challenge-validator plugin whose newOrder policy may refuse identifiers; empty: none.
    pub order_policy: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./acmegate-data"),
            database_url: String::new(),
            server: ServerConfig::default(),
            ca: CaConfig::default(),
            acme: AcmeConfig::default(),
            validation: ValidationConfig::default(),
            profiles: Vec::new(),
            issuance: Default::default(),
            retention: Default::default(),
            plugins: Vec::new(),
            targets: Vec::new(),
            managed: Vec::new(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl ServerConfig {
    /// `client_timeout_seconds` as a duration.
    pub fn client_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.client_timeout_seconds.max(1))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            base_url: String::new(),
            http_listen: String::new(),
            pki_url: String::new(),
            tls_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            max_body_bytes: 64 * 1024,
            max_connections: 1024,
            client_timeout_seconds: 30,
        }
    }
}

impl Default for CaConfig {
    fn default() -> Self {
        Self {
            key_file: PathBuf::from("./acmegate-secrets/ca.key"),
            root_cn: "acmegate Root CA".into(),
            intermediate_cn: "acmegate Issuing CA".into(),
            organization: "acmegate".into(),
        }
    }
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            terms_of_service: String::new(),
            website: String::new(),
            caa_identities: vec!["acmegate.invalid".into()],
            eab_required: false,
            auto_approve: false,
            default_profile: "default".into(),
            order_lifetime_hours: 24,
            authz_lifetime_hours: 24 * 7,
            orders_per_page: 100,
            renewal_info_retry_after_seconds: 6 * 3600,
        }
    }
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            http01_port: 80,
            tlsalpn01_port: 443,
            dns_resolver: String::new(),
            timeout_seconds: 10,
            max_concurrent: 64,
            caa: true,
            challenge_plugins: Default::default(),
            order_policy: String::new(),
        }
    }
}

impl Config {
    /// Loads the file (if any), applies `ACMEGATE_*` overrides from `env`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = file
            .map(|path| {
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })
            })
            .transpose()?;
        Self::from_sources(file.zip(text.as_deref()), env)
    }

    /// As [`Config::load`], with the file's text already read: `path` anchors its relative
    /// paths and names it in errors. The fuzz target `config` (host/fuzz) feeds it
    /// arbitrary text, which must be refused with a [`ConfigError`], never a panic.
    pub fn parse(
        path: &Path,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::from_sources(Some((path, text)), env)
    }

    fn from_sources(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut tree = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some((path, text)) = file {
            let mut from_file: toml::Value =
                toml::from_str(text).map_err(|source| ConfigError::Parse {
                    path: path.into(),
                    source: Box::new(source),
                })?;
            anchor_paths(&mut from_file, path.parent().unwrap_or(Path::new("")));
            merge(&mut tree, from_file);
        }
        // Dotted key -> the variable that set it, to name the variable in a later type error.
        let mut set_by_env = std::collections::BTreeMap::new();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if ENV_NOT_KEYS.contains(&var.as_str()) || var.starts_with("ACMEGATE_TEST_") {
                continue;
            }
            let (key, set) = apply_env(&mut tree, &rest.to_ascii_lowercase(), &value)
                .ok_or_else(|| ConfigError::UnknownEnv { var: var.clone() })?;
            set.map_err(|expected| ConfigError::Value {
                origin: format!("environment variable {var}"),
                key: key.clone(),
                value: format!("{value:?}"),
                reason: format!("expected {expected}"),
            })?;
            set_by_env.insert(key, var);
        }
        // serde_path_to_error: the toml crate's own error from a `Value` carries no key.
        let config: Config = serde_path_to_error::deserialize(tree.clone()).map_err(|e| {
            let key = e.path().to_string();
            let var = set_by_env.iter().find_map(|(set, var)| {
                key.strip_prefix(set.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
                    .then_some(var)
            });
            let origin = match (var, file) {
                (Some(var), _) => format!("environment variable {var}"),
                (None, Some((path, _))) => format!("config file {}", path.display()),
                (None, None) => "configuration".to_string(),
            };
            ConfigError::Value {
                origin,
                value: value_at(&tree, e.path())
                    .map_or_else(|| "(absent)".into(), |v| v.to_string()),
                key,
                reason: e.inner().message().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let profiles = self.profiles();
        let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
        if !names.contains(&self.acme.default_profile.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "acme.default_profile {:?} is not among the profiles {names:?}",
                self.acme.default_profile
            )));
        }
        for p in self.profiles() {
            if p.validity_hours == 0 {
                return Err(ConfigError::Invalid(format!(
                    "profile {:?} has validity_hours = 0",
                    p.name
                )));
            }
            if self.issuance.retired_issuers.contains(&p.issuer) {
                return Err(ConfigError::Invalid(format!(
                    "profile {:?} names issuer {:?}, which issuance.retired_issuers retires; \
                     name the issuer that replaces it",
                    p.name, p.issuer
                )));
            }
            let issuers = self.issuer_names();
            if !issuers.contains(&p.issuer.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "profile {:?} names issuer {:?}; the issuers are: {issuers:?}",
                    p.name, p.issuer
                )));
            }
        }
        let validators = self.plugin_names("challenge-validator");
        let policy = Some(self.validation.order_policy.as_str()).filter(|p| !p.is_empty());
        for name in self
            .validation
            .challenge_plugins
            .values()
            .map(String::as_str)
            .chain(policy)
        {
            if !validators.contains(&name) {
                return Err(ConfigError::Invalid(format!(
                    "validation names plugin {name:?}, which is not a configured challenge-validator \
                     (those are: {validators:?})"
                )));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for plugin in &self.plugins {
            plugin.spec().map_err(ConfigError::Invalid)?;
            if plugin.name == crate::ca::BUILTIN_ISSUER || !names.insert(plugin.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "plugin name {:?} is taken",
                    plugin.name
                )));
            }
        }
        targets::check_config(&self.targets).map_err(ConfigError::Invalid)?;
        self.retention.check().map_err(ConfigError::Invalid)?;
        let deployers = self.plugin_names("target-deployer");
        for target in &self.targets {
            if !deployers.contains(&target.deployer.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "target {:?} names deployer {:?}, which is not a configured target-deployer \
                     (those are: {deployers:?})",
                    target.name, target.deployer
                )));
            }
        }
        let target_names: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        let profile_names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
        let profile_names: Vec<&str> = profile_names.iter().map(String::as_str).collect();
        managed::check_config(&self.managed, &profile_names, &target_names)
            .map_err(ConfigError::Invalid)?;
        let database_url = self.database_url();
        crate::store::DatabaseUrl::parse(&database_url).map_err(|e| {
            ConfigError::Invalid(format!(
                "database_url {:?}: {e}",
                crate::store::redacted_url(&database_url)
            ))
        })?;
        for (key, value) in [
            ("server.max_connections", self.server.max_connections as u64),
            (
                "server.client_timeout_seconds",
                self.server.client_timeout_seconds,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{key} = 0: expected 1 or more"
                )));
            }
        }
        // Port 0 means "any port" to bind, but validation connects to a port: it cannot be 0.
        for (key, port) in [
            ("validation.http01_port", self.validation.http01_port),
            ("validation.tlsalpn01_port", self.validation.tlsalpn01_port),
        ] {
            if port == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{key} = 0: expected a port from 1 to 65535"
                )));
            }
        }
        if !self.admin.listen.is_empty() && self.admin.listen_addr().is_none() {
            return Err(ConfigError::Invalid(format!(
                "admin.listen {:?} is not IP:port (empty disables the admin API)",
                self.admin.listen
            )));
        }
        if !self.server.http_listen.is_empty() && self.server.http_listen_addr().is_none() {
            return Err(ConfigError::Invalid(format!(
                "server.http_listen {:?} is not IP:port (empty: no plain-HTTP listener)",
                self.server.http_listen
            )));
        }
        for (key, url) in [
            ("server.base_url", &self.server.base_url),
            ("server.pki_url", &self.server.pki_url),
        ] {
            if !url.is_empty() && url_host(url).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "{key} {url:?} is not an http:// or https:// URL with a host"
                )));
            }
        }
        if !self.validation.dns_resolver.is_empty()
            && self.dns_resolver().is_none_or(|a| a.port() == 0)
        {
            return Err(ConfigError::Invalid(format!(
                "validation.dns_resolver {:?} is not IP:port with a port from 1 to 65535",
                self.validation.dns_resolver
            )));
        }
        Ok(())
    }

    /// `builtin` and the names of the configured issuer plugins.
    pub fn issuer_names(&self) -> Vec<&str> {
        let mut names = vec![crate::ca::BUILTIN_ISSUER];
        names.extend(self.plugin_names("issuer-connector"));
        names
    }

    /// Names of the configured plugins of `kind`.
    fn plugin_names(&self, kind: &str) -> Vec<&str> {
        self.plugins
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.name.as_str())
            .collect()
    }

    /// The configured profiles, or the built-in default one.
    pub fn profiles(&self) -> Vec<Profile> {
        if self.profiles.is_empty() {
            vec![Profile::default_server()]
        } else {
            self.profiles.clone()
        }
    }

    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("acmegate.db").display())
        } else {
            self.database_url.clone()
        }
    }

    pub fn dns_resolver(&self) -> Option<SocketAddr> {
        self.validation.dns_resolver.parse().ok()
    }

    /// The external base URL, given the port the listener actually bound.
    pub fn base_url(&self, bound_port: u16) -> String {
        if self.server.base_url.is_empty() {
            format!("https://localhost:{bound_port}")
        } else {
            self.server.base_url.trim_end_matches('/').to_string()
        }
    }
}

impl ServerConfig {
    pub fn http_listen_addr(&self) -> Option<SocketAddr> {
        self.http_listen.parse().ok()
    }

    /// Where relying parties fetch the CA certificates and CRLs (see `pki_url`), given the
    /// port the plain-HTTP listener bound (if any) and the base URL.
    pub fn pki_url(&self, http_port: Option<u16>, base_url: &str) -> String {
        if !self.pki_url.is_empty() {
            return self.pki_url.trim_end_matches('/').to_string();
        }
        match http_port {
            None => base_url.to_string(),
            Some(port) => {
                let host = url_host(base_url).unwrap_or("localhost");
                match port {
                    80 => format!("http://{host}"),
                    port => format!("http://{host}:{port}"),
                }
            }
        }
    }
}

/// The host of an `http://` or `https://` URL (an IPv6 address keeps its brackets), if it
/// has one.
fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => &authority[..v6.find(']')? + 2],
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// Makes the relative paths a config file names relative to the file's directory, so that
/// `acmegate serve --config /etc/acmegate/acmegate.toml` finds `data_dir = "data"` beside the
/// file whatever the working directory. Defaults and `ACMEGATE_*` variables stay relative to
/// the working directory.
fn anchor_paths(file: &mut toml::Value, dir: &Path) {
    let anchor = |value: &mut toml::Value| {
        if let toml::Value::String(text) = value {
            let path = Path::new(text.as_str());
            if path.is_relative() && !text.is_empty() {
                *text = dir.join(path).display().to_string();
            }
        }
    };
    let Some(root) = file.as_table_mut() else {
        return;
    };
    if let Some(v) = root.get_mut("data_dir") {
        anchor(v);
    }
    if let Some(v) = root.get_mut("ca").and_then(|ca| ca.get_mut("key_file")) {
        anchor(v);
    }
    if let Some(v) = root
        .get_mut("retention")
        .and_then(|r| r.get_mut("audit_archive_dir"))
    {
        anchor(v);
    }
    if let Some(toml::Value::Array(files)) = root
        .get_mut("admin")
        .and_then(|admin| admin.get_mut("client_ca_files"))
    {
        files.iter_mut().for_each(anchor);
    }
    if let Some(toml::Value::Array(plugins)) = root.get_mut("plugins") {
        for plugin in plugins {
            if let Some(v) = plugin.get_mut("file") {
                anchor(v);
            }
        }
    }
}

/// Overlays `src` on `dst`, table by table.
fn merge(dst: &mut toml::Value, src: toml::Value) {
    match (dst, src) {
        (toml::Value::Table(d), toml::Value::Table(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (d, s) => *d = s,
    }
}

/// The value at `path` in `tree`, if there is one.
fn value_at<'a>(
    tree: &'a toml::Value,
    path: &serde_path_to_error::Path,
) -> Option<&'a toml::Value> {
    use serde_path_to_error::Segment;
    path.iter().try_fold(tree, |value, segment| match segment {
        Segment::Map { key } => value.get(key.as_str()),
        Segment::Seq { index } => value.get(*index),
        Segment::Enum { .. } | Segment::Unknown => Some(value),
    })
}

/// Finds the key that `name` (lower-case, `_`-joined path) denotes and sets it. Section names
/// are matched first, so `server_max_body_bytes` is `server.max_body_bytes`. The value is read
/// as TOML when it parses as the existing key's type, a comma list for arrays, else a string.
/// `None` when `name` is no key; else the dotted key and, when the value is not of the key's
/// type, what was expected.
fn apply_env(
    tree: &mut toml::Value,
    name: &str,
    value: &str,
) -> Option<(String, Result<(), &'static str>)> {
    let table = tree.as_table_mut()?;
    if let Some(existing) = table.get_mut(name) {
        if !existing.is_table() {
            let set = typed_value(existing, value).map(|v| *existing = v);
            return Some((name.to_string(), set));
        }
    }
    let section = table
        .keys()
        .filter(|k| table.get(*k).is_some_and(toml::Value::is_table))
        .find(|k| name.starts_with(&format!("{k}_")))?
        .clone();
    let rest = &name[section.len() + 1..];
    let (key, set) = apply_env(table.get_mut(&section)?, rest, value)?;
    Some((format!("{section}.{key}"), set))
}

/// `raw` as a value of `existing`'s type, or what that type expects.
fn typed_value(existing: &toml::Value, raw: &str) -> Result<toml::Value, &'static str> {
    use toml::Value as V;
    Ok(match existing {
        V::String(_) => V::String(raw.to_string()),
        V::Integer(_) => V::Integer(raw.trim().parse().map_err(|_| "an integer")?),
        V::Boolean(_) => V::Boolean(match raw.trim() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err("true or false (also 1/0, yes/no, on/off)"),
        }),
        V::Array(_) => V::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| V::String(s.into()))
                .collect(),
        ),
        _ => V::String(raw.to_string()),
    })
}

/// [`SAMPLE`] with `server.base_url` and `server.http_listen` set (empty: left empty). A base
/// URL's host other than this machine's own names joins `server.tls_names`, so that clients
/// which reach the gateway by that name accept its certificate.
pub fn sample_with(base_url: &str, http_listen: &str) -> String {
    let quoted = |v: &str| toml::Value::String(v.to_owned()).to_string();
    let mut text = SAMPLE
        .replacen(
            "\nbase_url = \"\"\n",
            &format!("\nbase_url = {}\n", quoted(base_url)),
            1,
        )
        .replacen(
            "\nhttp_listen = \"\"\n",
            &format!("\nhttp_listen = {}\n", quoted(http_listen)),
            1,
        );
    if let Some(host) = url_host(base_url) {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if !["localhost", "127.0.0.1", "::1"].contains(&bare) {
            text = text.replacen(
                "\ntls_names = [",
                &format!("\ntls_names = [{}, ", quoted(bare)),
                1,
            );
        }
    }
    text
}

/// The commented file `acmegate init` writes.
pub const SAMPLE: &str = r#"# acmegate configuration. Every key can be overridden by an environment variable:
# ACMEGATE_<SECTION>_<KEY>, e.g. ACMEGATE_SERVER_LISTEN=0.0.0.0:443. See docs/configuration.md.

# Database file (SQLite) and CA certificates live here.
data_dir = "./acmegate-data"
# Empty: SQLite at <data_dir>/acmegate.db. For several replicas: "postgres://user@host/db".
database_url = ""

[server]
listen = "127.0.0.1:8443"
# The URL clients use; empty means https://localhost:<port>, which only this machine reaches.
# Certificates carry CRL and CA certificate URLs built from it (or from pki_url): set it
# before the first certificate is issued.
base_url = ""
# A plain-HTTP listener for the CA certificates and CRLs only (RFC 5280 relying parties fetch
# them without TLS), e.g. "0.0.0.0:80"; empty: none.
http_listen = ""
# Where relying parties fetch the CA certificates and CRL; empty: http://<base_url's host>
# on http_listen's port when http_listen is set, else base_url.
pki_url = ""
# Names in the listener's TLS certificate (issued by the gateway's own CA at every start).
tls_names = ["localhost", "127.0.0.1", "::1"]
max_body_bytes = 65536
# Connections served at once per listener; more wait until one closes.
max_connections = 1024
# Seconds a client has for the TLS handshake, each request's headers and body, and to start
# its next request on an idle connection.
client_timeout_seconds = 30

[ca]
# The secret that encrypts the CA private keys. Created (32 random bytes, mode 0600) on first
# start. ACMEGATE_CA_PASSPHRASE, when set, is used instead.
key_file = "./acmegate-secrets/ca.key"
root_cn = "acmegate Root CA"
intermediate_cn = "acmegate Issuing CA"
organization = "acmegate"

[acme]
terms_of_service = ""
website = ""
# Issuer domain names for CAA (RFC 8659) `issue` records that authorise this CA.
caa_identities = ["acmegate.invalid"]
# RFC 8555 §7.3.4: require External Account Binding (keys from `acmegate eab create`).
eab_required = false
# DANGER: every challenge succeeds without a check. Trusted networks and benchmarks only.
auto_approve = false
default_profile = "default"
order_lifetime_hours = 24
authz_lifetime_hours = 168
orders_per_page = 100

[validation]
# RFC 8555 uses 80 and 443; other ports are for tests and private networks.
http01_port = 80
tlsalpn01_port = 443
# "IP:port" of the DNS server for dns-01, CAA and lookups; empty uses the system resolver.
dns_resolver = ""
timeout_seconds = 10
max_concurrent = 64
caa = true

[issuance]
# Finalize waits this long for the issuer, then answers "processing" (clients poll).
inline_wait_ms = 5000
# A job's owner holds it this long; after a crash another replica (or the restart) takes over.
lease_seconds = 120
# Issuance jobs the background worker runs at once.
workers = 8
# Issuers taken out of service: at start, the renewal windows (ARI) of their valid certificates
# move to now, so that clients renew through the profiles' current issuers.
retired_issuers = []
[issuance.retry]
# Transient issuer failures are retried with exponential backoff until either limit is hit;
# then the order becomes invalid with the issuer's error.
max_attempts = 8
give_up_after_seconds = 900
base_delay_seconds = 2
max_delay_seconds = 120

[retention]
# Expired authorizations and challenges, and orders that expired without a certificate, are
# deleted keep_days after they expired, by one replica every interval_seconds. Certificates,
# their orders and the audit log are kept. false: keep everything.
enabled = true
keep_days = 30
interval_seconds = 3600
# Audit entries older than this many days move from the database to JSON-lines files in
# audit_archive_dir (empty: <data_dir>/audit-archive); `acmegate audit verify --archive DIR`
# checks them. 0 keeps the whole audit log in the database.
audit_keep_days = 0
audit_archive_dir = ""

[admin]
# The mTLS admin API: only client certificates of this gateway's CA (or client_ca_files) that
# are not revoked get in. Create the first one with `acmegate admin-cert issue --cn NAME`.
# Empty disables it.
listen = "127.0.0.1:9443"
client_ca_files = []
# Roles come from the certificate: subject OU, or listed subject common names.
admin_units = ["acmegate-admin"]
client_units = ["acmegate-client"]
# Auditors read everything admins read (API and console) and change nothing.
auditor_units = ["acmegate-auditor"]
admin_names = []
client_names = []
auditor_names = []
identity_validity_days = 365
per_page = 50

[log]
# "text" (one readable line per event; coloured only when stdout is a terminal) or "json"
# (one JSON object per line, with level, message, target and fields, for log collectors).
# Which events: the ACMEGATE_LOG filter, e.g. ACMEGATE_LOG=info,acmegate=debug.
format = "text"

# Certificate profiles, chosen by the newOrder "profile" field. Without any, one "default"
# profile issues 90-day server certificates.
[[profiles]]
name = "default"
description = "TLS server certificate, 90 days"
validity_hours = 2160
eku = "server"         # server | client | both
issuer = "builtin"     # the gateway's own CA, or an issuer plugin's name

[[profiles]]
name = "short"
description = "TLS server and client certificate, 24 hours"
validity_hours = 24
eku = "both"
[profiles.key_policy]
rsa_min_bits = 2048
rsa_max_bits = 8192
ec_curves = ["P-256", "P-384"]
ed25519 = true

# WebAssembly plugins and deployment targets (docs/plugins.md). For example, push every
# certificate for *.example.com to an edge proxy's certificate API:
#
# [[plugins]]
# name = "edge-push"
# kind = "target-deployer"
# file = "/var/lib/acmegate/plugins/http-push-deployer.wasm"
# grants = { http_hosts = ["edge-api.internal.example"] }
#
# [[targets]]
# name = "edge"
# deployer = "edge-push"
# names = ["example.com", "*.example.com"]
# config = { url = "https://edge-api.internal.example/certificate" }
#
# A certificate the gateway keeps on its own for a service that runs no ACME client: it
# generates the key, issues, deploys to the targets and renews before expiry
# (docs/lifecycle.md):
#
# [[managed]]
# name = "edge-www"
# names = ["www.example.com", "example.com"]
# profile = "default"
# key_type = "p256"
# targets = ["edge"]
# renew_at_percent = 66   # or leave out: renew in the certificate's ARI window
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.database_url(), "sqlite://./acmegate-data/acmegate.db");
        assert_eq!(c.base_url(8443), "https://localhost:8443");
        assert_eq!(c.profiles()[0].name, "default");
    }

    #[test]
    fn relying_parties_get_a_plain_http_url_when_there_is_a_listener() {
        let mut server = ServerConfig::default();
        let base = "https://acme.example.internal:8443";
        assert_eq!(
            server.pki_url(None, base),
            base,
            "no listener: the base URL"
        );
        assert_eq!(
            server.pki_url(Some(8080), base),
            "http://acme.example.internal:8080"
        );
        assert_eq!(
            server.pki_url(Some(80), base),
            "http://acme.example.internal"
        );
        assert_eq!(
            server.pki_url(Some(80), "https://[fd00::1]:8443/"),
            "http://[fd00::1]"
        );
        server.pki_url = "http://pki.example.internal/".into();
        assert_eq!(
            server.pki_url(Some(8080), base),
            "http://pki.example.internal",
            "an explicit pki_url wins"
        );
    }

    #[test]
    fn urls_and_the_plain_http_address_are_checked() {
        for (key, value, named) in [
            (
                "ACMEGATE_SERVER_BASE_URL",
                "acme.example:8443",
                "server.base_url",
            ),
            ("ACMEGATE_SERVER_PKI_URL", "ftp://x", "server.pki_url"),
            (
                "ACMEGATE_SERVER_HTTP_LISTEN",
                "port 80",
                "server.http_listen",
            ),
        ] {
            let err = Config::load(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn init_writes_the_base_url_and_its_host_into_the_tls_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acmegate.toml");
        std::fs::write(
            &path,
            sample_with("https://acme.example.internal:8443", "0.0.0.0:8080"),
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.server.base_url, "https://acme.example.internal:8443");
        assert_eq!(c.server.http_listen, "0.0.0.0:8080");
        assert_eq!(c.server.tls_names[0], "acme.example.internal");
        assert!(c.server.tls_names.contains(&"localhost".to_string()));
        std::fs::write(&path, sample_with("", "")).unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.server, ServerConfig::default(), "nothing asked, defaults");
        std::fs::write(&path, sample_with("https://localhost:9000", "")).unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.server.tls_names, ServerConfig::default().tls_names);
    }

    #[test]
    fn sample_parses_and_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acmegate.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("ACMEGATE_SERVER_LISTEN", "0.0.0.0:9443"),
                ("ACMEGATE_SERVER_MAX_BODY_BYTES", "1000"),
                ("ACMEGATE_ACME_AUTO_APPROVE", "true"),
                ("ACMEGATE_ACME_CAA_IDENTITIES", "a.example, b.example"),
                ("ACMEGATE_DATA_DIR", "/tmp/x"),
                ("ACMEGATE_CA_PASSPHRASE", "not a key"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9443);
        assert_eq!(c.server.max_body_bytes, 1000);
        assert!(c.acme.auto_approve);
        assert_eq!(c.acme.caa_identities, vec!["a.example", "b.example"]);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.profiles.len(), 2);
        assert_eq!(c.profiles[1].validity_hours, 24);
    }

    #[test]
    fn relative_paths_in_a_file_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acmegate.toml");
        std::fs::write(
            &path,
            "data_dir = \"data\"\n\
             [ca]\nkey_file = \"secrets/ca.key\"\n\
             [admin]\nclient_ca_files = [\"ops.pem\", \"/abs/other.pem\"]\n\
             [[plugins]]\nname = \"p\"\nkind = \"notifier\"\nfile = \"plugins/p.wasm\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.ca.key_file, dir.path().join("secrets/ca.key"));
        assert_eq!(
            c.admin.client_ca_files,
            vec![dir.path().join("ops.pem"), PathBuf::from("/abs/other.pem")]
        );
        assert_eq!(c.plugins[0].file, dir.path().join("plugins/p.wasm"));
        // Variables and defaults stay relative to the working directory.
        let c = Config::load(Some(&path), env(&[("ACMEGATE_DATA_DIR", "here")])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("here"));
        assert_eq!(
            Config::load(None, env(&[])).unwrap().data_dir,
            PathBuf::from("./acmegate-data")
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = Config::load(None, env(&[("ACMEGATE_SERVER_NOPE", "1")])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownEnv { .. }), "{err}");
        assert!(Config::load(None, env(&[("ACMEGATE_VALIDATION_HTTP01_PORT", "x")])).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nlisen = \"1\"\n").unwrap();
        assert!(Config::load(Some(&path), env(&[])).is_err());
        std::fs::write(&path, "[acme]\ndefault_profile = \"missing\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("missing"));
    }

    #[test]
    fn log_format_is_text_or_json_and_a_bad_one_names_key_and_value() {
        assert_eq!(Config::default().log.format, LogFormat::Text);
        let c = Config::load(None, env(&[("ACMEGATE_LOG_FORMAT", "json")])).unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[log]\nformat = \"xml\"\n").unwrap();
        assert_eq!(
            Config::load(Some(&path), env(&[])).unwrap_err().to_string(),
            format!(
                "config file {}: log.format = \"xml\": expected \"text\" or \"json\"",
                path.display()
            )
        );
        assert_eq!(
            Config::load(None, env(&[("ACMEGATE_LOG_FORMAT", "xml")]))
                .unwrap_err()
                .to_string(),
            "environment variable ACMEGATE_LOG_FORMAT: log.format = \"xml\": expected \"text\" \
             or \"json\""
        );
    }

    #[test]
    fn type_and_range_errors_name_the_key_and_where_it_was_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let file_err = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(Some(&path), env(&[])).unwrap_err().to_string()
        };
        let origin = format!("config file {}", path.display());
        assert_eq!(
            file_err("[validation]\nhttp01_port = 70000\n"),
            format!(
                "{origin}: validation.http01_port = 70000: invalid value: integer `70000`, \
                 expected u16"
            )
        );
        assert_eq!(
            file_err("[server]\nlisten = \"localhost:80\"\n"),
            format!("{origin}: server.listen = \"localhost:80\": invalid socket address syntax")
        );
        assert_eq!(
            file_err("[acme]\neab_required = \"yes\"\n"),
            format!(
                "{origin}: acme.eab_required = \"yes\": invalid type: string \"yes\", \
                 expected a boolean"
            )
        );

        let env_err = |var: &str, value: &str| {
            Config::load(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            env_err("ACMEGATE_VALIDATION_HTTP01_PORT", "x"),
            "environment variable ACMEGATE_VALIDATION_HTTP01_PORT: validation.http01_port = \
             \"x\": expected an integer"
        );
        assert_eq!(
            env_err("ACMEGATE_VALIDATION_HTTP01_PORT", "70000"),
            "environment variable ACMEGATE_VALIDATION_HTTP01_PORT: validation.http01_port = \
             70000: invalid value: integer `70000`, expected u16"
        );
        assert_eq!(
            env_err("ACMEGATE_ACME_EAB_REQUIRED", "maybe"),
            "environment variable ACMEGATE_ACME_EAB_REQUIRED: acme.eab_required = \"maybe\": \
             expected true or false (also 1/0, yes/no, on/off)"
        );
        assert_eq!(
            env_err("ACMEGATE_SERVER_LISTEN", "0.0.0.0"),
            "environment variable ACMEGATE_SERVER_LISTEN: server.listen = \"0.0.0.0\": invalid \
             socket address syntax"
        );
    }

    #[test]
    fn retention_defaults_overrides_and_range_errors() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(
            c.retention,
            RetentionConfig {
                enabled: true,
                keep_days: 30,
                interval_seconds: 3600,
                audit_keep_days: 0,
                audit_archive_dir: PathBuf::new(),
            }
        );
        assert_eq!(c.retention.cutoff(100 * 86_400), 70 * 86_400);
        assert_eq!(
            c.retention.audit_cutoff(100 * 86_400),
            None,
            "kept by default"
        );
        assert_eq!(
            c.retention
                .audit_archive_dir(Path::new("/var/lib/acmegate")),
            Path::new("/var/lib/acmegate/audit-archive")
        );
        let c = Config::load(
            None,
            env(&[
                ("ACMEGATE_RETENTION_ENABLED", "off"),
                ("ACMEGATE_RETENTION_KEEP_DAYS", "0"),
                ("ACMEGATE_RETENTION_INTERVAL_SECONDS", "60"),
            ]),
        )
        .unwrap();
        assert!(!c.retention.enabled);
        assert_eq!((c.retention.keep_days, c.retention.interval()), (0, 60));
        let c = Config::load(None, env(&[("ACMEGATE_RETENTION_AUDIT_KEEP_DAYS", "90")])).unwrap();
        assert_eq!(c.retention.audit_cutoff(100 * 86_400), Some(10 * 86_400));
        let err = |var: &str, value: &str| {
            Config::load(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("ACMEGATE_RETENTION_INTERVAL_SECONDS", "0"),
            "invalid configuration: retention.interval_seconds = 0: expected 1 to 31622400"
        );
        assert_eq!(
            err("ACMEGATE_RETENTION_KEEP_DAYS", "40000"),
            "invalid configuration: retention.keep_days = 40000: expected 0 to 36525"
        );
        assert_eq!(
            err("ACMEGATE_RETENTION_AUDIT_KEEP_DAYS", "40000"),
            "invalid configuration: retention.audit_keep_days = 40000: expected 0 to 36525"
        );
        assert_eq!(
            err("ACMEGATE_RETENTION_KEEP_DAYS", "-1"),
            "environment variable ACMEGATE_RETENTION_KEEP_DAYS: retention.keep_days = -1: \
             invalid value: integer `-1`, expected u32"
        );
        assert_eq!(
            err("ACMEGATE_RETENTION_ENABLED", "sometimes"),
            "environment variable ACMEGATE_RETENTION_ENABLED: retention.enabled = \
             \"sometimes\": expected true or false (also 1/0, yes/no, on/off)"
        );
    }

    #[test]
    fn validation_ports_cannot_be_zero() {
        for (var, key) in [
            ("ACMEGATE_VALIDATION_HTTP01_PORT", "validation.http01_port"),
            (
                "ACMEGATE_VALIDATION_TLSALPN01_PORT",
                "validation.tlsalpn01_port",
            ),
        ] {
            let err = Config::load(None, env(&[(var, "0")])).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid configuration: {key} = 0: expected a port from 1 to 65535")
            );
        }
        let err = Config::load(
            None,
            env(&[("ACMEGATE_VALIDATION_DNS_RESOLVER", "10.0.0.1:0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("validation.dns_resolver"), "{err}");
    }

    #[test]
    fn unknown_database_scheme_is_named_with_the_supported_ones() {
        let err = Config::load(
            None,
            env(&[("ACMEGATE_DATABASE_URL", "mysql://root:pw@db/acme")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: database_url \"mysql://root:***@db/acme\": the scheme \
             \"mysql\" is not supported; expected sqlite://PATH, sqlite:PATH, a bare file path, \
             postgres://... or postgresql://..."
        );
    }

    #[test]
    fn plugin_names_in_validation_and_profiles_must_exist() {
        let mut c = Config::default();
        c.validation.challenge_plugins = [("http-01".into(), "ghost".into())].into();
        assert!(c.validate().unwrap_err().to_string().contains("ghost"));
        let mut c = Config::default();
        c.validation.order_policy = "ghost".into();
        assert!(c.validate().is_err());
        let mut c = Config {
            profiles: vec![Profile {
                issuer: "nowhere".into(),
                ..Profile::default_server()
            }],
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("nowhere"));
        c.plugins = vec![crate::plugins::PluginConfig {
            name: "nowhere".into(),
            kind: "issuer-connector".into(),
            file: "x.wasm".into(),
            config: Default::default(),
            grants: Default::default(),
        }];
        c.validate().unwrap();
        // A retired issuer may not issue any more, even when its plugin is still configured.
        c.issuance.retired_issuers = vec!["nowhere".into()];
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("\"nowhere\"") && err.contains("issuance.retired_issuers"),
            "{err}"
        );
        c.issuance.retired_issuers.clear();

        // A target must name a configured target-deployer, not a plugin of another kind.
        c.targets = vec![TargetConfig {
            name: "edge".into(),
            deployer: "nowhere".into(),
            names: vec!["*.example.com".into()],
            verify: true,
            attempts: 3,
            config: Default::default(),
        }];
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("not a configured target-deployer"), "{err}");
        c.plugins[0].kind = "target-deployer".into();
        c.profiles.clear();
        c.validate().unwrap();
    }
}
