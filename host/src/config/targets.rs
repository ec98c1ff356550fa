//! `[[targets]]`: where issued certificates are deployed (`crate::authority::deploy`).

use serde::{Deserialize, Serialize};

use crate::acme::name_policy;

/// Attempts per certificate and target when the configuration names none.
pub const DEFAULT_ATTEMPTS: u32 = 3;

/// One `[[targets]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The operator's name for the target; the deployer receives it as `deployment.target`.
    pub name: String,
    /// The `[[plugins]]` entry (kind `target-deployer`) that deploys here.
    pub deployer: String,
    /// Certificates whose every identifier matches one of these patterns (`host`, `*.zone`,
    /// IP address, network) deploy here; empty means every certificate.
    #[serde(default)]
    pub names: Vec<String>,
    /// Ask the deployer to verify after each deploy (default true).
    #[serde(default = "yes")]
    pub verify: bool,
    /// Attempts before the deployment is reported failed (default [`DEFAULT_ATTEMPTS`]).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Where and how to deploy, in the deployer's terms; handed to it as JSON with every call.
    #[serde(default)]
    pub config: toml::Table,
}

fn yes() -> bool {
    true
}

fn default_attempts() -> u32 {
    DEFAULT_ATTEMPTS
}

/// Checks the target entries: unique names, patterns that parse. Deployers are checked when
/// the plugins are loaded.
pub fn check_config(targets: &[TargetConfig]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for target in targets {
        if target.name.is_empty() || !seen.insert(target.name.as_str()) {
            return Err(format!(
                "target names must be unique and not empty: {:?}",
                target.name
            ));
        }
        name_policy::parse_all(&target.names)
            .map_err(|e| format!("target {:?}: {e}", target.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_entries_are_checked() {
        let entry: TargetConfig = toml::from_str(
            r#"
            name = "edge"
            deployer = "push"
            names = ["*.example.com"]
            config = { url = "https://edge/cert" }
            "#,
        )
        .unwrap();
        assert!(entry.verify && entry.attempts == DEFAULT_ATTEMPTS);
        assert_eq!(entry.config["url"].as_str(), Some("https://edge/cert"));
        assert!(check_config(std::slice::from_ref(&entry)).is_ok());
        assert!(check_config(&[entry.clone(), entry.clone()])
            .unwrap_err()
            .contains("unique"));
        let bad = TargetConfig {
            names: vec!["not a name".into()],
            ..entry
        };
        assert!(check_config(&[bad])
            .unwrap_err()
            .contains("target \"edge\""));
    }
}
