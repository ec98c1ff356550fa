//! Builds every acmegate plugin crate (under `plugins/` and `examples/`) into a WebAssembly
//! component in one step.
//!
//! Why a Rust tool and not a build script: a build script cannot depend on another crate's
//! `cdylib`, and the componentizing step (`wit-component`) is a library. The host's tests call
//! [`build_all`] directly, so they need no separate command.
//!
//! Steps: pick a toolchain ([`toolchain`]: rustup's `wasm32-unknown-unknown` target when
//! installed, else Debian's `rustc-web` with `-Zbuild-std`, installed with apt-get when
//! missing), run `cargo build` on each plugin project ([`cargo`]), then wrap each core module in
//! a component with `wit-component`'s `ComponentEncoder`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod cargo;
pub mod toolchain;

/// The wasm target plugins build for. `wasm32-unknown-unknown` gives a component that imports
/// only the WIT the plugin uses; `wasm32-wasip2` would always import WASI interfaces.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Everything that can stop a plugin build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("failed to {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to install the Debian wasm toolchain ({packages}): {detail}")]
    Install { packages: String, detail: String },
    #[error("cargo build of {manifest} failed (exit status {status})")]
    Cargo { manifest: String, status: String },
    #[error("failed to componentize {module}: {detail}")]
    Componentize { module: String, detail: String },
    #[error("no plugin projects under {0} (expected plugins/Cargo.toml or examples/*/Cargo.toml)")]
    NothingToBuild(String),
    #[error("failed to extract revision {revision} with git archive: {detail}")]
    Revision { revision: String, detail: String },
}

impl BuildError {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let action = action.into();
        move |source| Self::Io { action, source }
    }
}

/// Where to look and where to write.
#[derive(Clone, Debug)]
pub struct Options {
    /// The acmegate workspace (holds `plugins/` and `examples/`).
    pub workspace: PathBuf,
    /// Where the components go, as `<name>.wasm`.
    pub out_dir: PathBuf,
    /// Cargo target dir for the wasm builds; kept apart from the host's because a different
    /// compiler (Debian's) would otherwise rebuild the host's artifacts back and forth.
    pub wasm_target_dir: PathBuf,
}

impl Options {
    /// Defaults: `<target>/plugins/` for components and `<target>/wasm-plugins/` for cargo,
    /// where `<target>` is `$CARGO_TARGET_DIR` or `<workspace>/target`.
    pub fn for_workspace(workspace: &Path) -> Self {
        let target = target_dir(workspace);
        Self {
            workspace: workspace.to_path_buf(),
            out_dir: target.join("plugins"),
            wasm_target_dir: target.join("wasm-plugins"),
        }
    }
}

/// `$CARGO_TARGET_DIR`, or `<workspace>/target`.
fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
}

/// The last revision whose in-tree plugins and SDK speak `acmegate:plugin@0.1.0`. The gateway's
/// tests load builds of it beside the current ones ([`build_revision`]), which proves that
/// 0.1.0 components keep loading and working.
pub const CONTRACT_0_1_REVISION: &str = "363c162";

/// Builds the in-tree plugins of git `revision` of `workspace` (its root `Cargo.toml`, which
/// the SDK inherits from, `plugins/` and `plugin-sdk/`, extracted with `git archive` once into
/// `<target>/plugins-<label>-src/`) into `<target>/plugins-<label>/`, with a wasm target dir of
/// their own (`<target>/wasm-plugins-<label>/`) so the current builds are not overwritten.
/// Returns the options it built with; cargo makes a second call cheap.
pub fn build_revision(
    workspace: &Path,
    revision: &str,
    label: &str,
) -> Result<Options, BuildError> {
    let target = target_dir(workspace);
    let src = target.join(format!("plugins-{label}-src"));
    if !src.join("plugins/Cargo.toml").is_file() {
        extract(workspace, revision, &target, &src)?;
    }
    let options = Options {
        workspace: src,
        out_dir: target.join(format!("plugins-{label}")),
        wasm_target_dir: target.join(format!("wasm-plugins-{label}")),
    };
    build_all(&options)?;
    Ok(options)
}

/// The directory of this workspace's in-tree plugins as built at [`CONTRACT_0_1_REVISION`]
/// (`acmegate:plugin@0.1.0`), built on the first call of the process; for tests, which
/// panic if it cannot be built.
pub fn contract_0_1_plugins() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        build_revision(&workspace_root(), CONTRACT_0_1_REVISION, "0.1.0")
            .unwrap_or_else(|e| panic!("building the 0.1.0 plugins failed: {e}"))
            .out_dir
    })
}

/// `git archive REVISION Cargo.toml plugins plugin-sdk | tar -x` into `src`, through a
/// temporary directory renamed into place, so a concurrent or interrupted extraction never
/// leaves a partial tree behind.
fn extract(workspace: &Path, revision: &str, target: &Path, src: &Path) -> Result<(), BuildError> {
    let failed = |detail: String| BuildError::Revision {
        revision: revision.to_string(),
        detail,
    };
    let tmp = target.join(format!(".{}.{}", revision, std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(BuildError::io(format!("create {}", tmp.display())))?;
    let archive = Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args([
            "archive",
            "--format=tar",
            revision,
            "Cargo.toml",
            "plugins",
            "plugin-sdk",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(BuildError::io("run git archive"))?;
    if !archive.status.success() {
        return Err(failed(format!("git archive exited {}", archive.status)));
    }
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&tmp)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(BuildError::io("run tar"))?;
    if let Some(mut stdin) = tar.stdin.take() {
        stdin
            .write_all(&archive.stdout)
            .map_err(BuildError::io("write to tar"))?;
    }
    let status = tar.wait().map_err(BuildError::io("wait for tar"))?;
    if !status.success() {
        return Err(failed(format!("tar exited {status}")));
    }
    if let Err(e) = fs::rename(&tmp, src) {
        let _ = fs::remove_dir_all(&tmp);
        // Another process extracted it first.
        if !src.join("plugins/Cargo.toml").is_file() {
            return Err(BuildError::io(format!("rename to {}", src.display()))(e));
        }
    }
    Ok(())
}

/// The acmegate workspace being built or tested: the nearest ancestor holding
/// `plugins/Cargo.toml` of the package cargo runs (`CARGO_MANIFEST_DIR` at run time, which
/// `cargo run` and `cargo test` set), else of this crate's own source.
///
/// Why not the compile-time `CARGO_MANIFEST_DIR` alone: cargo shares the artifacts of a
/// workspace's path crates between checkouts at different paths that use one target dir (it
/// hashes their paths relative to the workspace), so a tool compiled in one checkout would
/// build and test the plugins of that checkout from another (a CI clone, a git worktree).
pub fn workspace_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let running = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    running
        .iter()
        .chain(std::iter::once(&compiled))
        .find_map(|start| {
            start
                .ancestors()
                .find(|dir| dir.join("plugins").join("Cargo.toml").is_file())
                .map(Path::to_path_buf)
        })
        // Invariant: this crate lives at <workspace>/plugin-sdk/build, two levels down.
        .unwrap_or_else(|| {
            compiled
                .ancestors()
                .nth(2)
                .unwrap_or(&compiled)
                .to_path_buf()
        })
}

/// One component written by [`build_all`].
#[derive(Clone, Debug)]
pub struct BuiltPlugin {
    /// The crate's library name with `-` for `_`, e.g. `allowlist-validator`.
    pub name: String,
    pub path: PathBuf,
    pub size: usize,
}

/// The plugin projects: `plugins/Cargo.toml` (one cargo workspace holding the in-tree plugins
/// and the hostile fixtures) and every `examples/*/Cargo.toml`.
pub fn projects(workspace: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let plugins = workspace.join("plugins/Cargo.toml");
    if plugins.is_file() {
        found.push(plugins);
    }
    if let Ok(entries) = fs::read_dir(workspace.join("examples")) {
        let mut examples: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("Cargo.toml"))
            .filter(|p| p.is_file())
            .collect();
        examples.sort();
        found.extend(examples);
    }
    found
}

/// Builds every plugin project and componentizes each `cdylib` into `out_dir/<name>.wasm`.
///
/// Safe to call from several processes at once: a lock file in `out_dir` serializes builds
/// (apt-get and cargo would otherwise fight over their own locks), and each component is
/// written to a temporary file and renamed into place.
pub fn build_all(options: &Options) -> Result<Vec<BuiltPlugin>, BuildError> {
    let projects = projects(&options.workspace);
    if projects.is_empty() {
        return Err(BuildError::NothingToBuild(
            options.workspace.display().to_string(),
        ));
    }
    fs::create_dir_all(&options.out_dir).map_err(BuildError::io(format!(
        "create {}",
        options.out_dir.display()
    )))?;
    let lock_path = options.out_dir.join(".build.lock");
    let lock = File::create(&lock_path)
        .map_err(BuildError::io(format!("create {}", lock_path.display())))?;
    lock.lock()
        .map_err(BuildError::io(format!("lock {}", lock_path.display())))?;

    let toolchain = toolchain::Toolchain::detect_or_install()?;
    let mut built = Vec::new();
    for manifest in projects {
        for module in cargo::build(&toolchain, &manifest, &options.wasm_target_dir)? {
            built.push(componentize(&module, &options.out_dir)?);
        }
    }
    // The lock is released when `lock` drops.
    Ok(built)
}

/// Wraps a core module carrying wit-bindgen's component-type section into a component.
pub fn componentize(module: &Path, out_dir: &Path) -> Result<BuiltPlugin, BuildError> {
    let bytes = fs::read(module).map_err(BuildError::io(format!("read {}", module.display())))?;
    let component = encode_component(&bytes).map_err(|detail| BuildError::Componentize {
        module: module.display().to_string(),
        detail,
    })?;
    let stem = module
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let name = stem.replace('_', "-");
    let path = out_dir.join(format!("{name}.wasm"));
    let tmp = out_dir.join(format!(".{name}.wasm.tmp"));
    fs::write(&tmp, &component).map_err(BuildError::io(format!("write {}", tmp.display())))?;
    fs::rename(&tmp, &path).map_err(BuildError::io(format!("rename to {}", path.display())))?;
    Ok(BuiltPlugin {
        name,
        path,
        size: component.len(),
    })
}

/// The component bytes for a core module, validated.
pub fn encode_component(module: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .map_err(|e| format!("{e:#}"))?
        .encode()
        .map_err(|e| format!("{e:#}"))
}
