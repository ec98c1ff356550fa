//! Which gateway process this is, as far as leases on durable work go.
//!
//! Work in progress (issuance and validation jobs) is leased to a process by name. A process
//! that dies leaves leases behind; if its restart had a new name it would have to wait them out
//! before finishing its own work. So the name is kept in the data directory
//! (`instance-id`) and a restarted process takes back the leases of its earlier life at once.
//! The name is held with an exclusive lock on `instance.lock` for the life of the process (the
//! kernel drops it when the process dies, even by SIGKILL): a second live process on the same
//! data directory cannot take the lock and runs under a name of its own, so it never releases
//! work that a live process holds.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::ids;

/// This process's lease owner name, and the lock that makes it ours.
#[derive(Debug)]
pub struct Instance {
    pub owner: String,
    /// Whether `owner` is the data directory's kept name (so leases under it are of this
    /// process's earlier life); false when another live process holds it.
    pub resumes_earlier_life: bool,
    _lock: Option<File>,
}

impl Instance {
    /// The identity kept in `data_dir`, created on first start.
    pub fn of(data_dir: &Path) -> anyhow::Result<Instance> {
        let lock_path = data_dir.join("instance.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("failed to open {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            let owner = format!("gw-{}", ids::new_id());
            tracing::warn!(data_dir = %data_dir.display(), %owner, "another live gateway uses this data directory; this one runs under a name of its own");
            return Ok(Instance {
                owner,
                resumes_earlier_life: false,
                _lock: None,
            });
        }
        let id_path = data_dir.join("instance-id");
        let id = match std::fs::read_to_string(&id_path) {
            Ok(kept) if !kept.trim().is_empty() => kept.trim().to_owned(),
            Ok(_) => write_new_id(&id_path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_new_id(&id_path)?,
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read {}", id_path.display()))
            }
        };
        Ok(Instance {
            owner: format!("gw-{id}"),
            resumes_earlier_life: true,
            _lock: Some(lock),
        })
    }
}

fn write_new_id(path: &Path) -> anyhow::Result<String> {
    let id = ids::new_id();
    let mut f =
        File::create(path).with_context(|| format!("failed to create {}", path.display()))?;
    f.write_all(format!("{id}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::Instance;

    #[test]
    fn kept_across_restarts_and_never_shared_by_two_live_processes() {
        let dir = tempfile::tempdir().unwrap();
        let first = Instance::of(dir.path()).unwrap();
        assert!(first.resumes_earlier_life);
        let concurrent = Instance::of(dir.path()).unwrap();
        assert!(!concurrent.resumes_earlier_life);
        assert_ne!(concurrent.owner, first.owner);
        let owner = first.owner.clone();
        drop(first);
        let restarted = Instance::of(dir.path()).unwrap();
        assert!(restarted.resumes_earlier_life);
        assert_eq!(restarted.owner, owner);
    }
}
