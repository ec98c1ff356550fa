//! Runs `cargo build` for one plugin project and collects the wasm modules it produced.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::toolchain::Toolchain;
use crate::BuildError;

/// Builds every `cdylib` package of `manifest` (a plugin crate or a workspace of them) and
/// returns their `.wasm` files, read from cargo's JSON messages rather than guessed from names.
///
/// One cargo run per package: cargo unifies the features of all packages built together, and
/// two plugins of different kinds would then each get both kinds' bindings (see the SDK's
/// features).
pub fn build(
    toolchain: &Toolchain,
    manifest: &Path,
    target_dir: &Path,
) -> Result<Vec<PathBuf>, BuildError> {
    let mut found = Vec::new();
    for package in cdylib_packages(toolchain, manifest)? {
        found.extend(build_package(toolchain, manifest, &package, target_dir)?);
    }
    Ok(found)
}

fn build_package(
    toolchain: &Toolchain,
    manifest: &Path,
    package: &str,
    target_dir: &Path,
) -> Result<Vec<PathBuf>, BuildError> {
    let mut cmd = toolchain.cargo(&["build", "--release", "--target", crate::WASM_TARGET]);
    if *toolchain == Toolchain::Debian {
        cmd.arg("-Zbuild-std=std,panic_abort");
    }
    cmd.arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir.join(toolchain.dir_name()))
        .args([
            "--package",
            package,
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped());
    let stdout = run(&mut cmd, manifest, "cargo build")?;
    Ok(wasm_artifacts(&String::from_utf8_lossy(&stdout)))
}

/// Runs a cargo command for `manifest` (stderr to the terminal) and returns its stdout, or
/// an error naming the manifest when it fails.
fn run(
    cmd: &mut std::process::Command,
    manifest: &Path,
    what: &str,
) -> Result<Vec<u8>, BuildError> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(BuildError::io(format!(
            "run {what} for {}",
            manifest.display()
        )))?;
    if !out.status.success() {
        return Err(BuildError::Cargo {
            manifest: manifest.display().to_string(),
            status: out.status.to_string(),
        });
    }
    Ok(out.stdout)
}

/// The names of the packages of `manifest`'s workspace that have a `cdylib` target.
fn cdylib_packages(toolchain: &Toolchain, manifest: &Path) -> Result<Vec<String>, BuildError> {
    let mut cmd = toolchain.cargo(&["metadata", "--no-deps", "--format-version", "1"]);
    cmd.arg("--manifest-path").arg(manifest);
    let stdout = run(&mut cmd, manifest, "cargo metadata")?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&stdout).map_err(|e| BuildError::Cargo {
            manifest: manifest.display().to_string(),
            status: format!("unreadable cargo metadata: {e}"),
        })?;
    let packages = metadata["packages"].as_array().into_iter().flatten();
    Ok(packages
        .filter(|p| {
            let targets = p["targets"].as_array().into_iter().flatten();
            targets
                .flat_map(|t| t["crate_types"].as_array().into_iter().flatten())
                .any(|k| k == "cdylib")
        })
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect())
}

/// The `.wasm` files of `cdylib` targets in cargo's `--message-format=json` output.
fn wasm_artifacts(messages: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for line in messages.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        let files = msg["filenames"].as_array().into_iter().flatten();
        found.extend(
            files
                .filter_map(|f| f.as_str())
                .filter(|f| f.ends_with(".wasm"))
                .map(PathBuf::from),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cdylib_wasm_files_are_collected() {
        let messages = r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libdep.rlib"]}
not json
{"reason":"compiler-artifact","target":{"kind":["cdylib"]},"filenames":["/t/wasm32-unknown-unknown/release/my_plugin.wasm"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            wasm_artifacts(messages),
            vec![PathBuf::from(
                "/t/wasm32-unknown-unknown/release/my_plugin.wasm"
            )]
        );
    }
}
