//! Plugins as the operator configures them (`[[plugins]]`), turned into runtime specs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Grants, PluginSpec};

/// One `[[plugins]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The name profiles (`issuer = "<name>"`) and logs use; also keys its state.
    pub name: String,
    /// The extension point: `issuer-connector`, `challenge-validator`, `target-deployer` or
    /// `notifier`. The
    /// plugin's own `describe` must agree.
    pub kind: String,
    /// The component file; relative paths are relative to the gateway's working directory.
    pub file: PathBuf,
    /// Handed to the plugin's `configure` as JSON.
    #[serde(default)]
    pub config: toml::Table,
    /// What the plugin may use (see `Grants`); nothing when absent.
    #[serde(default)]
    pub grants: toml::Table,
}

/// The kinds `[[plugins]]` takes today.
pub const CONFIGURABLE_KINDS: [&str; 4] = [
    "issuer-connector",
    "challenge-validator",
    "target-deployer",
    "notifier",
];

impl PluginConfig {
    /// The runtime spec; `Err` says which key is wrong.
    pub fn spec(&self) -> Result<PluginSpec, String> {
        if !CONFIGURABLE_KINDS.contains(&self.kind.as_str()) {
            return Err(format!(
                "plugin {:?}: kind {:?} cannot be configured here; use one of {CONFIGURABLE_KINDS:?}",
                self.name, self.kind
            ));
        }
        let grants: Grants = toml::Value::Table(self.grants.clone())
            .try_into()
            .map_err(|e| format!("plugin {:?}: invalid grants: {e}", self.name))?;
        grants
            .check()
            .map_err(|e| format!("plugin {:?}: invalid grants: {e}", self.name))?;
        let config = serde_json::to_string(&self.config)
            .map_err(|e| format!("plugin {:?}: config is not JSON-able: {e}", self.name))?;
        Ok(PluginSpec {
            name: self.name.clone(),
            path: self.file.clone(),
            config,
            grants,
            limits: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_from_toml_with_grants_and_config() {
        let entry: PluginConfig = toml::from_str(
            r#"
            name = "upki"
            kind = "issuer-connector"
            file = "plugins/upki-issuer.wasm"
            [config]
            endpoint = "tcp://ca:5000"
            timeout_ms = 2000
            [grants]
            zmq_endpoints = ["tcp://ca:5000"]
            state = true
            "#,
        )
        .unwrap();
        let spec = entry.spec().unwrap();
        assert_eq!(spec.grants.zmq_endpoints, ["tcp://ca:5000"]);
        assert!(spec.grants.state && !spec.grants.log);
        let json: serde_json::Value = serde_json::from_str(&spec.config).unwrap();
        assert_eq!(json["timeout_ms"], 2000);

        let mut bad = entry.clone();
        bad.grants
            .insert("filesystem".into(), toml::Value::Boolean(true));
        assert!(bad.spec().unwrap_err().contains("invalid grants"));

        let mut relative = entry.clone();
        relative.grants = toml::toml! { files_dir = "certs" };
        let refused = relative.spec().unwrap_err();
        assert!(
            refused.contains("files_dir") && refused.contains("\"certs\""),
            "{refused}"
        );
        let mut empty = entry.clone();
        empty.grants = toml::toml! { commands = { reload = [] } };
        let refused = empty.spec().unwrap_err();
        assert!(refused.contains("commands.reload"), "{refused}");
        let mut kind = entry;
        kind.kind = "deployer".into();
        assert!(kind.spec().unwrap_err().contains("cannot be configured"));
    }
}
