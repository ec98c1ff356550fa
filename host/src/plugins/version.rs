//! Contract versioning: which `acmegate:plugin` versions this gateway loads.
//!
//! Semver as the component model applies it: versions are compatible when their first
//! non-zero part agrees (1.2 loads on 1.5; 0.1.3 loads on 0.1.0; 0.2 does not load on 0.1).
//! Within a compatible line the contract only grows (new functions, new interfaces), so a
//! plugin built for an older minor keeps loading; one that needs a newer minor fails to link
//! and says which import is missing.

/// The WIT package this gateway speaks.
pub const CONTRACT_PACKAGE: &str = "acmegate:plugin";
/// Its version (the `package` line of `plugin-sdk/wit/*.wit`).
pub const CONTRACT_VERSION: (u64, u64, u64) = (0, 1, 0);

/// The versions this gateway speaks, for messages: `acmegate:plugin@0.1.x`.
pub fn supported() -> String {
    let (major, minor, _) = CONTRACT_VERSION;
    if major == 0 {
        format!("{CONTRACT_PACKAGE}@0.{minor}.x")
    } else {
        format!("{CONTRACT_PACKAGE}@{major}.x")
    }
}

fn parse(version: &str) -> Option<(u64, u64, u64)> {
    // Pre-release and build suffixes do not change the compatibility line.
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

fn compatible(theirs: (u64, u64, u64)) -> bool {
    let ours = CONTRACT_VERSION;
    if ours.0 != 0 {
        theirs.0 == ours.0
    } else {
        theirs.0 == 0 && theirs.1 == ours.1
    }
}

/// Checks the contract versions in a component's import and export names
/// (`acmegate:plugin/validator@0.1.0`). Returns the first incompatible one, as
/// `acmegate:plugin@X.Y.Z`. Names of other packages (WASI) are not ours to judge.
pub fn first_incompatible<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let prefix = format!("{CONTRACT_PACKAGE}/");
    for name in names {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
        match parse(version) {
            Some(v) if compatible(v) => {}
            _ => {
                let shown = if version.is_empty() {
                    "no version"
                } else {
                    version
                };
                return Some(format!("{CONTRACT_PACKAGE}@{shown}"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_minors_pass_and_other_lines_are_named() {
        assert_eq!(
            first_incompatible(["acmegate:plugin/validator@0.1.0", "wasi:cli/env@0.2.0"]),
            None
        );
        assert_eq!(first_incompatible(["acmegate:plugin/log@0.1.7"]), None);
        assert_eq!(
            first_incompatible(["acmegate:plugin/plugin@1.0.0"]).as_deref(),
            Some("acmegate:plugin@1.0.0")
        );
        assert_eq!(
            first_incompatible(["acmegate:plugin/plugin@0.2.0"]).as_deref(),
            Some("acmegate:plugin@0.2.0")
        );
        assert_eq!(
            first_incompatible(["acmegate:plugin/plugin"]).as_deref(),
            Some("acmegate:plugin@no version")
        );
        assert_eq!(supported(), "acmegate:plugin@0.1.x");
    }

    #[test]
    fn the_wit_package_line_matches_the_constant() {
        let wit = include_str!("../../../plugin-sdk/wit/types.wit");
        let (major, minor, patch) = CONTRACT_VERSION;
        let line = format!("package {CONTRACT_PACKAGE}@{major}.{minor}.{patch};");
        assert!(wit.contains(&line), "types.wit must declare {line}");
    }
}
