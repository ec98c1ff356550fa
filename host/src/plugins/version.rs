//! Contract versioning: which `acmegate:plugin` versions this gateway loads, and which one a
//! component speaks.
//!
//! Semver as the component model applies it: versions are compatible when their first
//! non-zero part agrees (1.2 loads on 1.5; 0.2.3 loads on 0.2.0; 0.3 does not load on 0.2).
//! Within a compatible line the contract only grows (new functions, new interfaces), so a
//! plugin built for an older minor keeps loading; one that needs a newer minor fails to link
//! and says which import is missing. Besides the current line the gateway speaks 0.1 through
//! its own bindings ([`Contract::V0_1`]), so components built before 0.2 keep working.

/// The WIT package this gateway speaks.
pub const CONTRACT_PACKAGE: &str = "acmegate:plugin";
/// Its current version (the `package` line of `plugin-sdk/wit/*.wit`).
pub const CONTRACT_VERSION: (u64, u64, u64) = (0, 2, 0);

/// A contract line this gateway speaks; a component is bound with the bindings of its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Contract {
    /// `acmegate:plugin@0.1.x` (`plugin-sdk/wit-0.1.0/`): errors are bare strings, every world
    /// imports every capability.
    V0_1,
    /// `acmegate:plugin@0.2.x`, the current one.
    V0_2,
}

impl Contract {
    /// Every line this gateway speaks, newest first.
    pub const ALL: [Contract; 2] = [Contract::V0_2, Contract::V0_1];

    /// The line as `acmegate:plugin@0.2.x`.
    pub fn name(self) -> String {
        let (major, minor) = self.line();
        if major == 0 {
            format!("{CONTRACT_PACKAGE}@0.{minor}.x")
        } else {
            format!("{CONTRACT_PACKAGE}@{major}.x")
        }
    }

    fn line(self) -> (u64, u64) {
        match self {
            Contract::V0_1 => (0, 1),
            Contract::V0_2 => (CONTRACT_VERSION.0, CONTRACT_VERSION.1),
        }
    }

    /// The line `version` belongs to, if this gateway speaks it.
    fn of(version: (u64, u64, u64)) -> Option<Contract> {
        Contract::ALL.into_iter().find(|c| {
            let (major, minor) = c.line();
            if major != 0 {
                version.0 == major
            } else {
                version.0 == 0 && version.1 == minor
            }
        })
    }
}

/// The versions this gateway speaks, for messages: `acmegate:plugin@0.2.x or
/// acmegate:plugin@0.1.x`.
pub fn supported() -> String {
    Contract::ALL
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn parse(version: &str) -> Option<(u64, u64, u64)> {
    // Pre-release and build suffixes do not change the compatibility line.
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The contract of a component, from its import and export names
/// (`acmegate:plugin/validator@0.2.0`): `Ok(None)` when it names no interface of ours,
/// `Err(version)` with the first version this gateway does not speak, as
/// `acmegate:plugin@X.Y.Z`, or when it mixes two lines (then the second one). Names of other
/// packages (WASI) are not ours to judge.
pub fn contract_of<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Contract>, String> {
    let prefix = format!("{CONTRACT_PACKAGE}/");
    let mut found = None;
    for name in names {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
        let shown = || {
            let v = if version.is_empty() {
                "no version"
            } else {
                version
            };
            format!("{CONTRACT_PACKAGE}@{v}")
        };
        let contract = parse(version).and_then(Contract::of).ok_or_else(shown)?;
        match found {
            Some(earlier) if earlier != contract => return Err(shown()),
            _ => found = Some(contract),
        }
    }
    Ok(found)
}

/// The first contract version in `names` this gateway does not speak, if any (see
/// [`contract_of`]).
pub fn first_incompatible<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    contract_of(names).err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lines_load_and_other_lines_are_named() {
        assert_eq!(
            contract_of(["acmegate:plugin/validator@0.2.0", "wasi:cli/env@0.2.0"]),
            Ok(Some(Contract::V0_2))
        );
        assert_eq!(
            contract_of(["acmegate:plugin/log@0.1.7", "acmegate:plugin/plugin@0.1.0"]),
            Ok(Some(Contract::V0_1))
        );
        assert_eq!(contract_of(["wasi:cli/env@0.2.0"]), Ok(None));
        assert_eq!(first_incompatible(["acmegate:plugin/log@0.2.4"]), None);
        assert_eq!(
            first_incompatible(["acmegate:plugin/plugin@1.0.0"]).as_deref(),
            Some("acmegate:plugin@1.0.0")
        );
        assert_eq!(
            first_incompatible(["acmegate:plugin/plugin@0.3.0"]).as_deref(),
            Some("acmegate:plugin@0.3.0")
        );
        assert_eq!(
            first_incompatible(["acmegate:plugin/plugin"]).as_deref(),
            Some("acmegate:plugin@no version")
        );
        // One component, one contract: a 0.1 log import beside 0.2 exports is refused.
        assert_eq!(
            first_incompatible(["acmegate:plugin/log@0.1.0", "acmegate:plugin/plugin@0.2.0"])
                .as_deref(),
            Some("acmegate:plugin@0.2.0")
        );
        assert_eq!(
            supported(),
            "acmegate:plugin@0.2.x or acmegate:plugin@0.1.x"
        );
    }

    #[test]
    fn the_wit_package_lines_match_the_constants() {
        let wit = include_str!("../../../plugin-sdk/wit/types.wit");
        let (major, minor, patch) = CONTRACT_VERSION;
        let line = format!("package {CONTRACT_PACKAGE}@{major}.{minor}.{patch};");
        assert!(wit.contains(&line), "types.wit must declare {line}");
        let old = include_str!("../../../plugin-sdk/wit-0.1.0/types.wit");
        assert!(old.contains("package acmegate:plugin@0.1.0;"));
    }
}
