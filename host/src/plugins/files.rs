//! The `files` capability: reading and atomically replacing files in the one directory the
//! operator grants a plugin (`files_dir`), e.g. where nginx or HAProxy read their certificate.
//!
//! A plugin names a file by a relative path; the host refuses anything that could leave the
//! directory (absolute paths, `..`, `.`, empty parts) and, because a symbolic link inside the
//! directory could still point outside, resolves the parent directory and checks that it is
//! still inside the granted one before touching anything. Replacing is atomic (a temporary file
//! in the same directory, flushed, renamed over the old one, the directory flushed), so a web
//! server that reloads at any instant reads either the old certificate or the new one; the
//! rename replaces a symbolic link at the path itself rather than writing through it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::bindings::wit::types::CapabilityError;

/// The largest file a plugin may write or read: certificates, keys and bundles are kilobytes.
pub const FILE_MAX_BYTES: usize = 1 << 20;

/// The path a plugin named, checked to stay inside `dir`: the file's path and its resolved
/// parent directory.
fn resolve(dir: &Path, path: &str) -> Result<PathBuf, CapabilityError> {
    let invalid = |why: &str| CapabilityError::Invalid(format!("file path {path:?}: {why}"));
    if path.is_empty() || path.contains('\0') || path.contains('\\') {
        return Err(invalid(
            "must be a non-empty relative path with `/` separators",
        ));
    }
    let relative = Path::new(path);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        || path.split('/').any(|part| part.is_empty() || part == ".")
    {
        return Err(invalid(
            "must stay inside the granted directory (no leading `/`, `.`, `..` or empty parts)",
        ));
    }
    let root = dir.canonicalize().map_err(|e| {
        CapabilityError::Failed(format!("granted directory {}: {e}", dir.display()))
    })?;
    let joined = root.join(relative);
    let parent = joined.parent().unwrap_or(&root);
    let parent = parent
        .canonicalize()
        .map_err(|e| CapabilityError::Failed(format!("directory of {path:?}: {e}")))?;
    if !parent.starts_with(&root) {
        return Err(invalid("its directory leads outside the granted directory"));
    }
    let name = joined.file_name().ok_or_else(|| invalid("names no file"))?;
    Ok(parent.join(name))
}

/// Replaces `path` under `dir` with `contents` and permission bits `mode`, atomically.
pub async fn write(
    dir: PathBuf,
    path: String,
    contents: Vec<u8>,
    mode: u32,
) -> Result<(), CapabilityError> {
    if contents.len() > FILE_MAX_BYTES {
        return Err(CapabilityError::Invalid(format!(
            "file {path:?}: {} bytes, more than the {FILE_MAX_BYTES} a plugin may write",
            contents.len()
        )));
    }
    if mode & !0o777 != 0 {
        return Err(CapabilityError::Invalid(format!(
            "file {path:?}: mode {mode:#o} has bits beyond the permission bits 0o777"
        )));
    }
    tokio::task::spawn_blocking(move || {
        let target = resolve(&dir, &path)?;
        replace(&target, &contents, mode)
            .map_err(|e| CapabilityError::Failed(format!("writing {path:?}: {e}")))
    })
    .await
    .map_err(|e| CapabilityError::Failed(format!("file write task: {e}")))?
}

/// The temporary file beside `target`, its permission bits set before any byte is written
/// (so a key is never readable by others, whatever the umask), flushed, renamed over
/// `target`, and the directory flushed so the rename survives a crash.
fn replace(target: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.acmegate-{:016x}.tmp",
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The contents of `path` under `dir`, `None` when there is no such file.
pub async fn read(dir: PathBuf, path: String) -> Result<Option<Vec<u8>>, CapabilityError> {
    tokio::task::spawn_blocking(move || {
        let target = resolve(&dir, &path)?;
        let failed = |e: std::io::Error| CapabilityError::Failed(format!("reading {path:?}: {e}"));
        // Not through a symbolic link: it could point outside the granted directory.
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        let len = file.metadata().map_err(failed)?.len();
        if len > FILE_MAX_BYTES as u64 {
            return Err(CapabilityError::Invalid(format!(
                "file {path:?}: {len} bytes, more than the {FILE_MAX_BYTES} a plugin may read"
            )));
        }
        let mut contents = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, FILE_MAX_BYTES as u64),
            &mut contents,
        )
        .map_err(failed)?;
        Ok(Some(contents))
    })
    .await
    .map_err(|e| CapabilityError::Failed(format!("file read task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_atomically_with_the_mode_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        let root = dir.path().to_path_buf();
        write(
            root.clone(),
            "www/key.pem".into(),
            b"secret".to_vec(),
            0o600,
        )
        .await
        .unwrap();
        let written = dir.path().join("www/key.pem");
        assert_eq!(std::fs::read(&written).unwrap(), b"secret");
        let mode = std::fs::metadata(&written).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Replacing keeps no temporary file behind and takes the new mode.
        write(root.clone(), "www/key.pem".into(), b"newer".to_vec(), 0o640)
            .await
            .unwrap();
        assert_eq!(
            read(root.clone(), "www/key.pem".into()).await.unwrap(),
            Some(b"newer".to_vec())
        );
        let mode = std::fs::metadata(&written).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            std::fs::read_dir(dir.path().join("www")).unwrap().count(),
            1
        );
        assert_eq!(read(root, "www/none.pem".into()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn paths_cannot_leave_the_granted_directory() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        let root = dir.path().to_path_buf();
        for path in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "./x",
            "a//b",
            "",
            "escape/secret",
        ] {
            let refused = write(root.clone(), path.into(), b"x".to_vec(), 0o600).await;
            assert!(
                matches!(&refused, Err(CapabilityError::Invalid(m)) if m.contains(&format!("{path:?}"))),
                "{path:?}: {refused:?}"
            );
        }
        assert!(matches!(
            read(root.clone(), "escape/secret".into()).await,
            Err(CapabilityError::Invalid(_))
        ));
        // A link at the path itself is not followed: reading fails, writing replaces the link.
        assert!(matches!(
            read(root.clone(), "link".into()).await,
            Err(CapabilityError::Failed(m)) if m.contains("link")
        ));
        write(root, "link".into(), b"mine".to_vec(), 0o644)
            .await
            .unwrap();
        assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"x");
        assert_eq!(std::fs::read(dir.path().join("link")).unwrap(), b"mine");
    }

    #[tokio::test]
    async fn size_and_mode_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let big = vec![0u8; FILE_MAX_BYTES + 1];
        assert!(matches!(
            write(root.clone(), "big".into(), big, 0o600).await,
            Err(CapabilityError::Invalid(m)) if m.contains("1048576")
        ));
        assert!(matches!(
            write(root, "setuid".into(), b"x".to_vec(), 0o4755).await,
            Err(CapabilityError::Invalid(m)) if m.contains("0o4755")
        ));
    }
}
