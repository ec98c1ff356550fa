//! A target deployer for services that read their certificate from files: nginx, HAProxy,
//! Postfix, anything with a reload command. It writes the chain, the private key (mode 0600)
//! and a combined PEM into the directory the operator grants (`files_dir`), each replaced
//! atomically by the host, then runs the reload command the operator granted by name
//! (`commands`), then verifies with a TLS handshake (or, without a probe, by reading back the
//! chain file).
//!
//! The plugin's own configuration (JSON) is optional: `timeout_ms` (default 10000) for the
//! reload command and the probe. Each gateway target (`[[targets]]`) that names this deployer
//! says what to write in its `config`, paths relative to `files_dir`:
//!
//! ```text
//! { "chain": "www/fullchain.pem",        required: the chain, leaf first (mode 0644)
//!   "key": "www/privkey.pem",            optional: the private key (mode 0600)
//!   "combined": "www/combined.pem",      optional: key then chain in one file (0600), HAProxy's form
//!   "reload": "reload-nginx",            optional: a command granted by name; must exit 0
//!   "probe": { "host": "127.0.0.1", "port": 443, "server_name": "www.example.com" } }
//! ```
//!
//! A target that asks for `key` or `combined` gets a deployment only with the key: the gateway
//! holds keys it generated (managed certificates, the admin API's generate route), not those of
//! ACME clients, and writing a chain without its key would break the service at its next
//! reload. Such a deployment fails with that reason before anything is written.
//!
//! Grants: `files_dir`, the reload in `commands` (e.g. `reload-nginx = ["nginx", "-s",
//! "reload"]`), the probed host in `tls_probe_hosts`.

use acmegate_plugin_sdk::deployer::*;
use acmegate_plugin_sdk::x509::{pem_certificates, serial_hex};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
}

fn default_timeout() -> u32 {
    10_000
}

/// One target's `config`.
#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct TargetConfig {
    chain: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    combined: Option<String>,
    #[serde(default)]
    reload: Option<String>,
    #[serde(default)]
    probe: Option<Probe>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct Probe {
    host: String,
    #[serde(default = "https_port")]
    port: u16,
    /// SNI; the host when absent.
    #[serde(default)]
    server_name: Option<String>,
}

fn https_port() -> u16 {
    443
}

const CHAIN_MODE: u32 = 0o644;
const KEY_MODE: u32 = 0o600;

/// The settings of `target`, or why they are unusable (for the operator).
fn target_config(target: &Target) -> Result<TargetConfig, String> {
    serde_json::from_str(&target.config)
        .map_err(|e| format!("target {:?}: bad config: {e}", target.name))
}

/// A file to write: its path under `files_dir`, its contents and mode.
#[derive(Debug, PartialEq)]
struct File {
    path: String,
    contents: String,
    mode: u32,
}

/// What to write for `deployment` on a target configured as `config`, secrets first (so the
/// chain never names a key that is not there yet), or why nothing may be written.
fn plan(config: &TargetConfig, deployment: &Deployment) -> Result<Vec<File>, String> {
    let wants_key = config.key.is_some() || config.combined.is_some();
    let key = match (&deployment.private_key, wants_key) {
        (Some(key), true) => Some(key),
        (None, true) => {
            return Err(format!(
                "target {:?} writes a private key, but the gateway does not hold the key of \
                 certificate {} (an ACME client keeps its own): configure only `chain` for such \
                 certificates",
                deployment.target.name, deployment.serial
            ))
        }
        (_, false) => None,
    };
    let mut files = Vec::new();
    if let (Some(path), Some(key)) = (&config.key, key) {
        files.push(File {
            path: path.clone(),
            contents: key.clone(),
            mode: KEY_MODE,
        });
    }
    if let (Some(path), Some(key)) = (&config.combined, key) {
        let mut contents = key.trim_end().to_string();
        contents.push('\n');
        contents.push_str(&deployment.chain);
        files.push(File {
            path: path.clone(),
            contents,
            mode: KEY_MODE,
        });
    }
    files.push(File {
        path: config.chain.clone(),
        contents: deployment.chain.clone(),
        mode: CHAIN_MODE,
    });
    Ok(files)
}

struct FilesDeployer {
    config: Config,
}

impl FilesDeployer {
    /// Runs the granted command `name`, which must exit 0.
    fn reload(&self, name: &str) -> Result<String, String> {
        let output = commands::run(name, self.config.timeout_ms)
            .map_err(|e| format!("reload command {name:?}: {e:?}"))?;
        match output.status {
            Some(0) => Ok(format!("{name} exited 0")),
            status => {
                let said: String = output
                    .stderr
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let said: String = said.chars().take(200).collect();
                let how = status.map_or("was killed by a signal".into(), |s| format!("exited {s}"));
                Err(format!("reload command {name:?} {how}: {said}"))
            }
        }
    }

    fn verify_by_file(&self, path: &str, serial: &str) -> Result<VerifyOutcome, String> {
        let Some(contents) = files::read(path).map_err(|e| format!("reading {path:?}: {e:?}"))?
        else {
            return Ok(VerifyOutcome::Missing);
        };
        let text = String::from_utf8_lossy(&contents);
        match pem_certificates(&text)
            .first()
            .and_then(|der| serial_hex(der))
        {
            Some(found) => Ok(compare_serials(&found, serial)),
            None => Ok(VerifyOutcome::Mismatch(format!(
                "{path} holds no readable certificate"
            ))),
        }
    }
}

impl DeployerPlugin for FilesDeployer {
    fn describe() -> PluginInfo {
        PluginInfo {
            kind: PluginKind::TargetDeployer(DeployerInfo {
                targets: vec!["file".into()],
            }),
            name: "files-deployer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description:
                "Writes certificate files into a granted directory and reloads the service".into(),
        }
    }

    fn configure(config: &str) -> Result<Self, String> {
        let config: Config = acmegate_plugin_sdk::parse_config(config)?;
        Ok(FilesDeployer { config })
    }

    fn deploy(&self, deployment: Deployment) -> Result<String, PluginError> {
        // A target configuration or a key this deployer cannot use stays so until the operator
        // acts: no retry can succeed. Writing and reloading may (a full disk, a busy server).
        let config = target_config(&deployment.target).map_err(PluginError::Permanent)?;
        let files = plan(&config, &deployment).map_err(PluginError::Permanent)?;
        let mut receipt = Vec::new();
        for file in &files {
            files::write(&file.path, file.contents.as_bytes(), file.mode)
                .map_err(|e| format!("writing {}: {e:?}", file.path))?;
            receipt.push(file.path.as_str());
        }
        let mut receipt = format!("wrote {}", receipt.join(", "));
        if let Some(name) = &config.reload {
            receipt.push_str("; ");
            receipt.push_str(&self.reload(name)?);
        }
        Ok(receipt)
    }

    fn verify(&self, target: Target, serial: String) -> Result<VerifyOutcome, PluginError> {
        let config = target_config(&target).map_err(PluginError::Permanent)?;
        Ok(match &config.probe {
            Some(probe) => verify_by_probe(
                &probe.host,
                probe.port,
                probe.server_name.as_deref(),
                &serial,
                self.config.timeout_ms,
            )?,
            None => self.verify_by_file(&config.chain, &serial)?,
        })
    }
}

acmegate_plugin_sdk::deployer_plugin!(FilesDeployer);

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(key: Option<&str>) -> Deployment {
        Deployment {
            target: Target {
                name: "web".into(),
                config: "{}".into(),
            },
            identifiers: Vec::new(),
            serial: "0abc".into(),
            chain: "CHAIN\n".into(),
            private_key: key.map(String::from),
            not_after: 0,
        }
    }

    fn config(json: &str) -> TargetConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn keys_are_written_first_and_private() {
        let config = config(r#"{"chain": "c.pem", "key": "k.pem", "combined": "all.pem"}"#);
        let files = plan(&config, &deployment(Some("KEY\n"))).unwrap();
        let written: Vec<(&str, u32)> = files.iter().map(|f| (f.path.as_str(), f.mode)).collect();
        assert_eq!(
            written,
            [("k.pem", 0o600), ("all.pem", 0o600), ("c.pem", 0o644)]
        );
        assert_eq!(files[1].contents, "KEY\nCHAIN\n");
    }

    #[test]
    fn a_target_that_needs_the_key_refuses_a_deployment_without_it() {
        let keyed = config(r#"{"chain": "c.pem", "combined": "all.pem"}"#);
        let refused = plan(&keyed, &deployment(None)).unwrap_err();
        assert!(
            refused.contains("\"web\"") && refused.contains("0abc"),
            "{refused}"
        );
        // A chain-only target takes it, and never writes a key it was given.
        let chain_only = config(r#"{"chain": "c.pem"}"#);
        let files = plan(&chain_only, &deployment(Some("KEY"))).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].contents, "CHAIN\n");
    }

    #[test]
    fn target_configs_are_strict() {
        let target = |json: &str| Target {
            name: "t".into(),
            config: json.into(),
        };
        assert!(target_config(&target(r#"{"chain": "a", "kye": "b"}"#))
            .unwrap_err()
            .contains("unknown field `kye`"));
        assert!(target_config(&target("{}")).unwrap_err().contains("chain"));
        let probe = target_config(&target(r#"{"chain": "a", "probe": {"host": "h"}}"#)).unwrap();
        assert_eq!(probe.probe.unwrap().port, 443);
    }
}
