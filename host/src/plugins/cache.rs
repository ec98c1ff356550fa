//! The on-disk cache of compiled components, so that a restart or a reload of an unchanged
//! plugin skips compilation (10 ms for a small Rust plugin, ~5 s for a Python one).
//!
//! Files are named `<component sha256>-<engine compatibility hash>.cwasm`: a new wasmtime
//! version or engine setting never loads an old artifact. Each file starts with the SHA-256 of
//! the rest, checked before deserializing, so a truncated or corrupted file is recompiled.
//! The directory is created private (0700); only files this host wrote are ever loaded.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

use super::PluginError;

#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
}

const DIGEST_LEN: usize = 32;

pub(crate) fn sha256(bytes: &[u8]) -> [u8; DIGEST_LEN] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(digest.as_ref());
    out
}

impl ArtifactCache {
    pub(crate) fn open(dir: &Path) -> Result<Self, PluginError> {
        let io = |source| PluginError::Io {
            plugin: "-".into(),
            action: format!("create the plugin cache {}", dir.display()),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path_for(&self, engine: &Engine, component_sha256: &[u8; DIGEST_LEN]) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let name = format!(
            "{}-{:016x}.cwasm",
            crate::hex::lower(component_sha256),
            hasher.finish()
        );
        self.dir.join(name)
    }

    /// The compiled component for `bytes`, from the cache when present and intact, else
    /// compiled and stored. Returns whether it came from the cache.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        plugin: &str,
        bytes: &[u8],
        component_sha256: &[u8; DIGEST_LEN],
    ) -> Result<(Component, bool), PluginError> {
        let path = self.path_for(engine, component_sha256);
        if let Some(component) = self.load(engine, &path) {
            return Ok((component, true));
        }
        let serialized = engine
            .precompile_component(bytes)
            .map_err(|e| invalid(plugin, e))?;
        let component = deserialize_own(engine, &serialized).map_err(|e| invalid(plugin, e))?;
        // A cache that cannot be written costs a recompile next time, nothing more.
        if let Err(err) = store(&path, &serialized) {
            tracing::warn!(plugin, path = %path.display(), "failed to write plugin cache: {err}");
        }
        Ok((component, false))
    }

    fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let data = fs::read(path).ok()?;
        if data.len() < DIGEST_LEN || sha256(&data[DIGEST_LEN..]) != data[..DIGEST_LEN] {
            tracing::warn!(path = %path.display(), "discarding corrupt plugin cache entry");
            let _ = fs::remove_file(path);
            return None;
        }
        deserialize_own(engine, &data[DIGEST_LEN..]).ok()
    }
}

fn invalid(plugin: &str, err: wasmtime::Error) -> PluginError {
    PluginError::InvalidModule {
        plugin: plugin.into(),
        detail: format!("{err:#}"),
    }
}

/// Deserializes an artifact that this process produced with `precompile_component`, or read
/// back from the cache after its checksum matched.
#[allow(unsafe_code)] // The one unsafe call of the runtime; see the SAFETY note.
fn deserialize_own(engine: &Engine, serialized: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be wasmtime's own output, since it
    // maps it as executable code. `serialized` is either fresh from
    // `Engine::precompile_component` or a cache file this host wrote into its private (0700)
    // directory under a name bound to the engine's compatibility hash, and whose SHA-256
    // matched. wasmtime additionally checks the header (version, engine settings) and refuses
    // a mismatch.
    unsafe { Component::deserialize(engine, serialized) }
}

/// Writes `digest || serialized` to a temporary file and renames it into place, so a reader
/// never sees a half-written entry.
fn store(path: &Path, serialized: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&sha256(serialized))?;
    file.write_all(serialized)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}
