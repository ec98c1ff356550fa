//! `[[managed]]`: certificates the gateway keeps on its own for services that run no ACME
//! client (`crate::authority::managed`): it generates the key, issues, deploys to the named
//! targets and renews before expiry. Entries are declared in the store at every start; the
//! admin API declares more with the same definition and the same checks.

use serde::{Deserialize, Serialize};

/// The key type of a managed certificate when the entry names none.
pub const DEFAULT_KEY_TYPE: &str = "p256";

/// One managed certificate's definition: a `[[managed]]` entry, or the body of the admin API's
/// create.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManagedConfig {
    /// The operator's name for it: letters, digits, `.`, `_` and `-` (it is a URL segment).
    pub name: String,
    /// DNS names and IP addresses, the first one the subject's common name.
    pub names: Vec<String>,
    /// The profile it is issued under; empty: `acme.default_profile`.
    #[serde(default)]
    pub profile: String,
    /// `p256` (default), `p384`, `rsa2048` or `rsa3072`.
    #[serde(default = "default_key_type")]
    pub key_type: String,
    /// `[[targets]]` entries it is deployed to, by name.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Renew at this percentage of the lifetime (1 to 99); absent: in the certificate's ARI
    /// window (RFC 9773), the one ACME clients are told.
    #[serde(default)]
    pub renew_at_percent: Option<u8>,
}

fn default_key_type() -> String {
    DEFAULT_KEY_TYPE.to_owned()
}

impl ManagedConfig {
    /// Checks the definition against the configured `profiles` and `targets`; the error names
    /// the entry, the key and the value.
    pub fn check(&self, profiles: &[&str], targets: &[&str]) -> Result<(), String> {
        let entry = format!("managed {:?}", self.name);
        let valid_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(valid_name) {
            return Err(format!(
                "{entry}: name = {:?}: expected 1 to 64 letters, digits, '.', '_' or '-'",
                self.name
            ));
        }
        if self.names.is_empty() {
            return Err(format!(
                "{entry}: names = []: expected at least one DNS name or IP address"
            ));
        }
        if let Some(bad) = self
            .names
            .iter()
            .find(|n| n.is_empty() || n.contains(|c: char| c.is_whitespace() || c == '*'))
        {
            return Err(format!(
                "{entry}: names contains {bad:?}: expected a DNS name (no wildcard) or an IP address"
            ));
        }
        if !self.profile.is_empty() && !profiles.contains(&self.profile.as_str()) {
            return Err(format!(
                "{entry}: profile = {:?}: expected one of {profiles:?}",
                self.profile
            ));
        }
        if crate::ca::keys::KeyType::from_admin_name(&self.key_type).is_none() {
            return Err(format!(
                "{entry}: key_type = {:?}: expected one of {}",
                self.key_type,
                crate::ca::keys::KeyType::ADMIN_NAMES.join(", ")
            ));
        }
        if let Some(unknown) = self.targets.iter().find(|t| !targets.contains(&t.as_str())) {
            return Err(format!(
                "{entry}: targets contains {unknown:?}, which is not a [[targets]] entry \
                 (those are: {targets:?})"
            ));
        }
        if let Some(percent) = self.renew_at_percent.filter(|p| !(1..=99).contains(p)) {
            return Err(format!(
                "{entry}: renew_at_percent = {percent}: expected 1 to 99 (or no key: the ARI window)"
            ));
        }
        Ok(())
    }
}

/// Checks every entry and that names are unique.
pub fn check_config(
    managed: &[ManagedConfig],
    profiles: &[&str],
    targets: &[&str],
) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for entry in managed {
        entry.check(profiles, targets)?;
        if !seen.insert(entry.name.as_str()) {
            return Err(format!(
                "managed {:?}: name = {:?} is declared twice",
                entry.name, entry.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> ManagedConfig {
        toml::from_str(
            r#"
            name = "web"
            names = ["www.example.internal", "10.0.0.7"]
            targets = ["edge"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn entries_default_and_are_checked_naming_key_and_value() {
        let ok = entry();
        assert_eq!(ok.key_type, DEFAULT_KEY_TYPE);
        assert_eq!((ok.profile.as_str(), ok.renew_at_percent), ("", None));
        let (profiles, targets) = (["default", "short"], ["edge"]);
        assert_eq!(ok.check(&profiles, &targets), Ok(()));
        let bad = |change: fn(&mut ManagedConfig), expect: &str| {
            let mut e = entry();
            change(&mut e);
            let err = check_config(&[e], &profiles, &targets).unwrap_err();
            assert!(err.contains(expect), "{err} lacks {expect}");
        };
        bad(|e| e.name = "a/b".into(), "name = \"a/b\"");
        bad(|e| e.names.clear(), "names = []");
        bad(|e| e.names.push("*.example".into()), "\"*.example\"");
        bad(|e| e.profile = "long".into(), "profile = \"long\"");
        bad(|e| e.key_type = "dsa".into(), "key_type = \"dsa\"");
        bad(|e| e.targets.push("gone".into()), "\"gone\"");
        bad(|e| e.renew_at_percent = Some(100), "renew_at_percent = 100");
        let twice = check_config(&[entry(), entry()], &profiles, &targets).unwrap_err();
        assert!(twice.contains("declared twice"), "{twice}");
        assert!(toml::from_str::<ManagedConfig>("name = \"x\"\nnames = []\nttl = 3").is_err());
    }
}
