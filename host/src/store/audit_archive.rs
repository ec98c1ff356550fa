//! Archiving the audit log, so that the largest table that only ever grows stops growing while
//! the chain still verifies end to end: entries older than a cutoff move out of the database
//! into JSON-lines files, and the head row keeps a checkpoint (the last archived entry's seq and
//! mac, sealed with the audit key) that the entries left in the database link to. The files
//! verify from entry 1 up to that checkpoint ([`Store::verify_audit_archive`]), the database
//! from it on ([`Store::verify_audit`]).
//!
//! A run writes `audit-<first>-<last>.jsonl` under a temporary name, syncs and renames it,
//! then, in one transaction, deletes those entries and moves the checkpoint (a compare-and-set
//! on the old one, so of two racing runs one commits). A crash in between leaves a file of
//! entries that are still in the database: the next run removes files that start past the
//! checkpoint before it writes, and verification skips entries it has already checked.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use ring::hmac;

use super::audit::{entry_mac, seal, AuditEntry, Verdict};
use super::conn::DbConnection;
use super::schema::{audit_head, audit_log};
use super::{Result, Store, StoreError};

/// What one archive run moved out of the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    pub first: i64,
    pub last: i64,
    pub file: PathBuf,
}

/// The head row's view of the chain: its last entry, and the archive checkpoint.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_head)]
pub(super) struct Checkpoint {
    /// The last entry written.
    pub seq: i64,
    /// The last entry archived (0: none).
    pub archived_seq: i64,
    pub archived_mac: String,
    pub archived_seal: String,
}

impl Checkpoint {
    pub(super) fn read(c: &mut DbConnection) -> Result<Checkpoint> {
        Ok(audit_head::table
            .find(1)
            .select(Checkpoint::as_select())
            .first(c)?)
    }

    /// Whether the checkpoint is the one an archive run sealed (or there is none).
    pub(super) fn is_sealed(&self, key: &hmac::Key) -> bool {
        self.archived_seq == 0 && self.archived_seal.is_empty()
            || checkpoint_seal(key, self.archived_seq, &self.archived_mac) == self.archived_seal
    }
}

fn checkpoint_seal(key: &hmac::Key, seq: i64, mac: &str) -> String {
    seal(key, b"acmegate audit checkpoint v1", seq, mac)
}

/// The file of entries `first..=last`; zero-padded so that names sort by range.
fn file_name(first: i64, last: i64) -> String {
    format!("audit-{first:012}-{last:012}.jsonl")
}

/// The range of an archive file's name.
fn parse_file_name(name: &str) -> Option<(i64, i64)> {
    let range = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let (first, last) = range.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// The archive files in `dir` by range, first ascending.
fn archive_files(dir: &Path) -> Result<Vec<(i64, i64, PathBuf)>> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, e)),
    };
    let mut files = Vec::new();
    for entry in listing {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some((first, last)) = parse_file_name(name) {
            files.push((first, last, path));
        }
    }
    files.sort();
    Ok(files)
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Archive(format!("{}: {e}", path.display()))
}

/// Checks that `entries` continue the chain after `seq`/`mac`: numbers without gaps, each
/// linked to the one before and matching its mac. `Err` names the first that does not.
fn check_links<'a>(
    key: &hmac::Key,
    mut seq: i64,
    mut mac: &'a str,
    entries: &'a [AuditEntry],
) -> std::result::Result<(), (i64, String)> {
    for e in entries {
        if e.seq != seq + 1 {
            return Err((
                seq + 1,
                format!("entry {} is missing (the next one is {})", seq + 1, e.seq),
            ));
        }
        if e.prev_mac != mac {
            return Err((e.seq, "does not link to the entry before it".into()));
        }
        if entry_mac(key, e) != e.mac {
            return Err((e.seq, "its contents do not match its mac (edited)".into()));
        }
        seq = e.seq;
        mac = &e.mac;
    }
    Ok(())
}

/// Writes `entries` to `path` durably: a temporary file, synced, renamed, the directory synced.
fn write_file(path: &Path, entries: &[AuditEntry]) -> Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let file = fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    let mut out = BufWriter::new(file);
    for e in entries {
        let line = serde_json::to_string(e).map_err(|e| StoreError::Archive(e.to_string()))?;
        writeln!(out, "{line}").map_err(|e| io_error(&tmp, e))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| io_error(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(dir, e))?;
    }
    Ok(())
}

impl Store {
    /// Moves the oldest entries out of the database into a file in `dir`: those written before
    /// `cutoff` (Unix seconds), from the checkpoint on without a gap, at most `limit`, and never
    /// the newest entry (the head names it). The range is verified before it moves: a broken
    /// chain is not archived. Returns what moved, `None` when nothing was due or another run
    /// moved the checkpoint first.
    pub fn archive_audit(&self, dir: &Path, cutoff: i64, limit: i64) -> Result<Option<Archived>> {
        self.link_pending_audit()?;
        let key = self
            .auditor
            .as_ref()
            .map(|a| a.key.clone())
            .ok_or_else(|| StoreError::Archive("no audit key: cannot archive".into()))?;
        let (checkpoint, entries) = {
            let c = &mut *self.conn()?;
            let checkpoint = Checkpoint::read(c)?;
            if !checkpoint.is_sealed(&key) {
                return Err(StoreError::Archive(format!(
                    "the checkpoint at entry {} was altered; nothing archived (run `acmegate audit verify`)",
                    checkpoint.archived_seq
                )));
            }
            let first_kept: Option<i64> = audit_log::table
                .filter(audit_log::seq.gt(checkpoint.archived_seq))
                .filter(audit_log::at.ge(cutoff))
                .select(diesel::dsl::min(audit_log::seq))
                .first(c)?;
            let last = (checkpoint.seq - 1)
                .min(checkpoint.archived_seq.saturating_add(limit))
                .min(first_kept.map_or(i64::MAX, |s| s - 1));
            if last <= checkpoint.archived_seq {
                return Ok(None);
            }
            let entries: Vec<AuditEntry> = audit_log::table
                .filter(audit_log::seq.gt(checkpoint.archived_seq))
                .filter(audit_log::seq.le(last))
                .select(AuditEntry::as_select())
                .order(audit_log::seq.asc())
                .load(c)?;
            (checkpoint, entries)
        };
        let from = checkpoint.archived_seq;
        if let Err((seq, reason)) = check_links(&key, from, &checkpoint.archived_mac, &entries) {
            return Err(StoreError::Archive(format!(
                "audit entry {seq}: {reason}; nothing archived (run `acmegate audit verify`)"
            )));
        }
        let Some(last_entry) = entries.last() else {
            return Ok(None);
        };
        let (first, last, last_mac) = (from + 1, last_entry.seq, last_entry.mac.clone());

        fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        // Files of runs that never committed hold entries still in the database.
        for (start, _, path) in archive_files(dir)? {
            if start > from {
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
            }
        }
        let file = dir.join(file_name(first, last));
        write_file(&file, &entries)?;

        let seal = checkpoint_seal(&key, last, &last_mac);
        let committed = self.write(move |c| {
            let moved = diesel::update(
                audit_head::table
                    .find(1)
                    .filter(audit_head::archived_seq.eq(from)),
            )
            .set((
                audit_head::archived_seq.eq(last),
                audit_head::archived_mac.eq(last_mac),
                audit_head::archived_seal.eq(seal),
            ))
            .execute(c)?;
            if moved == 0 {
                return Ok(false);
            }
            diesel::delete(
                audit_log::table
                    .filter(audit_log::seq.gt(from))
                    .filter(audit_log::seq.le(last)),
            )
            .execute(c)?;
            Ok(true)
        })?;
        if !committed {
            return Ok(None);
        }
        Ok(Some(Archived { first, last, file }))
    }

    /// Checks the archive files in `dir` against the database's checkpoint: from entry 1,
    /// every entry linked to the one before and matching its mac, up to the entry the
    /// checkpoint names, whose mac it must carry. Entries past the checkpoint (a run that did
    /// not commit) and repeats are skipped.
    pub fn verify_audit_archive(&self, dir: &Path) -> Result<Verdict> {
        let key = self
            .auditor
            .as_ref()
            .map(|a| a.key.clone())
            .ok_or_else(|| StoreError::Archive("no audit key: cannot verify".into()))?;
        let checkpoint = Checkpoint::read(&mut *self.conn()?)?;
        if !checkpoint.is_sealed(&key) {
            return Ok(Verdict::Broken {
                seq: checkpoint.archived_seq,
                reason: "the archive checkpoint was altered".into(),
            });
        }
        let (mut seq, mut mac) = (0i64, String::new());
        for (_, _, path) in archive_files(dir)? {
            let file = fs::File::open(&path).map_err(|e| io_error(&path, e))?;
            for (n, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| io_error(&path, e))?;
                let entry: AuditEntry = match serde_json::from_str(&line) {
                    Ok(entry) => entry,
                    Err(e) => {
                        return Ok(Verdict::Broken {
                            seq: seq + 1,
                            reason: format!(
                                "{} line {}: not an audit entry ({e})",
                                path.display(),
                                n + 1
                            ),
                        })
                    }
                };
                if entry.seq <= seq || seq >= checkpoint.archived_seq {
                    continue;
                }
                if let Err((at, reason)) =
                    check_links(&key, seq, &mac, std::slice::from_ref(&entry))
                {
                    return Ok(Verdict::Broken {
                        seq: at,
                        reason: format!("{reason} ({})", path.display()),
                    });
                }
                seq = entry.seq;
                mac = entry.mac;
            }
        }
        if seq != checkpoint.archived_seq {
            return Ok(Verdict::Broken {
                seq: seq + 1,
                reason: format!(
                    "the archive in {} ends at entry {seq}, but entries up to {} were archived",
                    dir.display(),
                    checkpoint.archived_seq
                ),
            });
        }
        if mac != checkpoint.archived_mac {
            return Ok(Verdict::Broken {
                seq,
                reason: "the archive's last entry is not the one the checkpoint names".into(),
            });
        }
        Ok(Verdict::Intact {
            entries: seq,
            archived: seq,
        })
    }
}
