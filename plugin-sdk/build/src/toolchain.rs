//! Chooses the compiler for wasm plugins, and installs Debian's when nothing else is there.
//!
//! rustup's toolchain on our machines carries only the host standard library and cannot
//! download targets, so the fallback is Debian's `rustc-web` (a newer rustc) plus the
//! standard library sources, with the std built for wasm by `-Zbuild-std`.

use std::path::Path;
use std::process::Command;

use crate::{BuildError, WASM_TARGET};

/// The Debian packages of the fallback. `lld-22` must be named: `/usr/bin/rust-lld` points at
/// it and nothing depends on it. `rustc-web` and `rust-web-src` must be the same version,
/// which they are when installed together from the same suite.
pub const DEBIAN_PACKAGES: [&str; 5] = [
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "rust-web-llvm",
    "lld-22",
];

/// How to run cargo for the wasm target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's cargo with the target installed (`rustup target add wasm32-unknown-unknown`).
    Rustup,
    /// Debian's `/usr/bin/cargo` and `/usr/bin/rustc` with `-Zbuild-std`.
    Debian,
}

impl Toolchain {
    /// rustup when it has the wasm target; else Debian's, installed first if missing.
    pub fn detect_or_install() -> Result<Self, BuildError> {
        if rustup_has_target() {
            return Ok(Self::Rustup);
        }
        let missing = missing_debian_packages();
        if !missing.is_empty() {
            install_debian_packages(&missing)?;
        }
        Ok(Self::Debian)
    }

    /// A cargo command for this toolchain, with the environment of any enclosing cargo (tests
    /// run under `cargo test`) removed so that its compiler, flags and target dir do not leak
    /// in.
    pub fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = match self {
            Self::Rustup => Command::new("cargo"),
            Self::Debian => {
                let mut cmd = Command::new("/usr/bin/cargo");
                // ~/.cargo/bin usually comes first in PATH; the Debian binaries are named
                // explicitly and /usr/bin goes first for anything cargo runs by name.
                let path = std::env::var("PATH").unwrap_or_default();
                cmd.env("PATH", format!("/usr/bin:{path}"))
                    .env("RUSTC", "/usr/bin/rustc")
                    // build-std is a nightly flag; Debian's stable rustc accepts it this way.
                    .env("RUSTC_BOOTSTRAP", "1");
                cmd
            }
        };
        for (key, _) in std::env::vars_os() {
            if let Some(key) = key.to_str() {
                if inherited_cargo_var(key) {
                    cmd.env_remove(key);
                }
            }
        }
        cmd.args(args);
        cmd
    }

    /// A name for the target-dir subdirectory, so the two compilers never share artifacts.
    pub fn dir_name(&self) -> &'static str {
        match self {
            Self::Rustup => "rustup",
            Self::Debian => "debian",
        }
    }
}

/// Variables an enclosing cargo sets that would change the nested build. Registry, network
/// and terminal settings are kept.
fn inherited_cargo_var(key: &str) -> bool {
    const KEEP: [&str; 5] = [
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_REGISTRIES_",
        "CARGO_HTTP_",
        "CARGO_TERM_",
    ];
    let cargo = key == "CARGO" || key.starts_with("CARGO_");
    let rustc = key.starts_with("RUSTC") || key.starts_with("RUSTFLAGS") || key == "RUSTDOC";
    (cargo && !KEEP.iter().any(|k| key.starts_with(k))) || rustc
}

fn rustup_has_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l.trim() == WASM_TARGET)
        })
        .unwrap_or(false)
}

fn missing_debian_packages() -> Vec<&'static str> {
    DEBIAN_PACKAGES
        .into_iter()
        .filter(|pkg| {
            let installed = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", pkg])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false);
            !installed
        })
        .collect()
}

fn install_debian_packages(packages: &[&str]) -> Result<(), BuildError> {
    let fail = |detail: String| BuildError::Install {
        packages: packages.join(" "),
        detail,
    };
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let apt = |args: &[&str]| -> Result<(), BuildError> {
        let mut cmd = if as_root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        let out = cmd
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| fail(format!("cannot run apt-get: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(fail(format!(
                "apt-get {} failed: {}",
                args[0],
                stderr.trim()
            )))
        }
    };
    eprintln!(
        "acmegate-plugin-build: installing {} (no wasm32 target in rustup)",
        packages.join(" ")
    );
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    apt(&install)?;
    if !Path::new("/usr/lib/rustlib/src/rust/library").is_dir() {
        return Err(fail(
            "rust-web-src did not provide /usr/lib/rustlib/src/rust/library".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosing_cargo_variables_are_dropped_and_registry_ones_kept() {
        for key in [
            "CARGO",
            "CARGO_TARGET_DIR",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTFLAGS",
        ] {
            assert!(inherited_cargo_var(key), "{key} should be removed");
        }
        for key in [
            "CARGO_HOME",
            "CARGO_NET_OFFLINE",
            "CARGO_TERM_COLOR",
            "PATH",
            "HOME",
        ] {
            assert!(!inherited_cargo_var(key), "{key} should be kept");
        }
    }
}
