//! Durable outbox: terminal and package-event frames kept on disk until the scheduler acks them.
//!
//! One file per entry, named `<seq:020>-<sha256(id)>.entry`. The sequence number gives the
//! write order and the hash keeps hostile ids (`../..`, NUL, huge strings) out of file
//! names. A file holds a header line `astra-outbox v1 <sha256 of body>` and the JSON entry,
//! so a torn or bit-rotted file is detected and quarantined instead of replayed.
//!
//! Crash safety: an entry is written to `.tmp-<name>` and renamed into place before
//! `persist` returns, so after a crash at any point a file either holds the complete new
//! entry, or the previous state is intact and only a temp file is left (removed on open).
//! A process crash (kill -9) cannot lose a persisted entry: the kernel already has it.
//! Against power loss, [`OutboxSync`] chooses: `Always` fsyncs the file and the directory
//! before `persist` returns (one or two disk flushes per sent frame); `Batch` (the default)
//! leaves that to a group commit thread off the send path (see `group_commit`), so power
//! loss can lose the entries of the last pass, and a torn file is caught by its checksum.
//! Forgetting does not sync (see [`Outbox::forget`]).

use astra_core::worker::OutboxEntry;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod group_commit;
use group_commit::GroupCommit;

const HEADER_PREFIX: &str = "astra-outbox v1 ";
const TMP_PREFIX: &str = ".tmp-";
const ENTRY_SUFFIX: &str = ".entry";
const CORRUPT_SUFFIX: &str = ".corrupt";
const LOCK_FILE: &str = ".lock";
const SEQ_DIGITS: usize = 20;
const HASH_HEX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot create the outbox directory {path}: {cause}")]
    CreateDir { path: PathBuf, cause: io::Error },
    #[error("cannot list the outbox directory {path}: {cause}")]
    ReadDir { path: PathBuf, cause: io::Error },
    #[error("outbox {path} is in use by another astra-worker process (each worker needs its own data_dir)")]
    Locked { path: PathBuf },
    #[error("cannot lock the outbox {path}: {cause}")]
    Lock { path: PathBuf, cause: io::Error },
    #[error("cannot write outbox entry {path}: {cause} (is the disk full or read-only?)")]
    Write { path: PathBuf, cause: io::Error },
    #[error("cannot delete outbox entry {path}: {cause}")]
    Remove { path: PathBuf, cause: io::Error },
    #[error("cannot sync the outbox directory {path}: {cause}")]
    SyncDir { path: PathBuf, cause: io::Error },
    #[error("cannot make outbox entries in {path} durable: {cause} (is the disk failing? outbox_sync = always reports this per entry)")]
    GroupCommit { path: PathBuf, cause: String },
    #[error("cannot encode outbox entry for frame id of {id_len} bytes: {cause}")]
    Encode {
        id_len: usize,
        cause: serde_json::Error,
    },
}

/// `outbox_sync`: when a persisted entry is flushed to the disk itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxSync {
    /// Written (in the OS, survives kill -9) before the send; a group commit off the send
    /// path makes it survive power loss shortly after.
    #[default]
    Batch,
    /// fsync of the entry and the directory before every send.
    Always,
}

/// The on-disk outbox. One per data dir; the directory is locked while it is open.
pub struct Outbox {
    dir: PathBuf,
    sync: OutboxSync,
    /// Declared before `_lock`: dropping it finishes the pending pass while still locked.
    commit: GroupCommit,
    /// id → (sequence number, file name) of each live entry.
    live: HashMap<String, (u64, String)>,
    next_seq: u64,
    /// Held for the lifetime of the outbox: the advisory lock dies with the process.
    _lock: File,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.dir)
            .field("sync", &self.sync)
            .field("live", &self.live.len())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// [`Outbox::open_with`] in `OutboxSync::Always` mode.
    pub fn open(dir: &Path) -> Result<(Outbox, Vec<OutboxEntry>), OutboxError> {
        Self::open_with(dir, OutboxSync::Always)
    }

    /// Opens (creating if needed) the outbox in `dir` and returns the entries still waiting
    /// for an ack, in the order they were first written. Leftover temp files are removed;
    /// unreadable or corrupt entries are renamed to `*.corrupt` with a warning.
    pub fn open_with(
        dir: &Path,
        sync: OutboxSync,
    ) -> Result<(Outbox, Vec<OutboxEntry>), OutboxError> {
        fs::create_dir_all(dir).map_err(|cause| OutboxError::CreateDir {
            path: dir.to_path_buf(),
            cause,
        })?;
        // The directory itself may be new: make its entry in the parent durable too, or the
        // first entries could vanish with it after a power loss.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let lock = lock_dir(dir)?;
        let listing = fs::read_dir(dir).map_err(|cause| OutboxError::ReadDir {
            path: dir.to_path_buf(),
            cause,
        })?;

        // Keyed by (seq, name): hand-copied files could share a sequence number.
        let mut found: BTreeMap<(u64, String), OutboxEntry> = BTreeMap::new();
        let mut changed = false;
        for item in listing {
            let item = item.map_err(|cause| OutboxError::ReadDir {
                path: dir.to_path_buf(),
                cause,
            })?;
            let Ok(name) = item.file_name().into_string() else {
                tracing::warn!(dir = %dir.display(), "ignoring a non-UTF-8 file name in the outbox");
                continue;
            };
            let path = dir.join(&name);
            if name.starts_with(TMP_PREFIX) {
                // A write that crashed before its rename: the entry was never durable.
                match fs::remove_file(&path) {
                    Ok(()) => changed = true,
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "cannot remove a stale outbox temp file")
                    }
                }
                continue;
            }
            if name == LOCK_FILE || name.ends_with(CORRUPT_SUFFIX) {
                continue;
            }
            let Some((seq, hash)) = parse_name(&name) else {
                tracing::warn!(file = %path.display(), "ignoring a file that is not an outbox entry");
                continue;
            };
            match read_entry(&path, hash) {
                Ok(entry) => {
                    found.insert((seq, name), entry);
                }
                Err(reason) => {
                    quarantine(&path, &reason);
                    changed = true;
                }
            }
        }

        let next_seq = found.keys().next_back().map_or(0, |(s, _)| s + 1);
        // In write order. Two files for one id cannot come from `persist` (a rewrite reuses
        // the name); if copied in by hand, the later file wins, in its own position (so the
        // order is the same on every later open), and the older file is deleted.
        let mut live: HashMap<String, (u64, String)> = HashMap::new();
        let mut entries: Vec<OutboxEntry> = Vec::with_capacity(found.len());
        for ((seq, name), entry) in found {
            if let Some((_, old_name)) = live.insert(entry.id.clone(), (seq, name)) {
                let old = dir.join(old_name);
                tracing::warn!(file = %old.display(), "removing an outbox entry superseded by a later one with the same id");
                if let Err(e) = fs::remove_file(&old) {
                    tracing::warn!(file = %old.display(), error = %e, "cannot remove a superseded outbox entry");
                }
                entries.retain(|e| e.id != entry.id);
                changed = true;
            }
            entries.push(entry);
        }
        let outbox = Outbox {
            dir: dir.to_path_buf(),
            sync,
            commit: GroupCommit::new(dir),
            live,
            next_seq,
            _lock: lock,
        };
        if changed {
            outbox.sync_dir()?;
        }
        Ok((outbox, entries))
    }

    /// Stores `entry`; when this returns `Ok`, the entry survives a crash of this process,
    /// and power loss too in `Always` mode (in `Batch` mode once the next group commit is
    /// done). Persisting an id that is already stored replaces that entry in place (keeping
    /// its position). A failed group commit is reported here, by the next persist.
    pub fn persist(&mut self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        if let Some(cause) = self.commit.error() {
            return Err(OutboxError::GroupCommit {
                path: self.dir.clone(),
                cause,
            });
        }
        let name = match self.live.get(&entry.id) {
            Some((_, name)) => name.clone(),
            None => entry_name(self.next_seq, &entry.id),
        };
        let body = serde_json::to_vec(entry).map_err(|cause| OutboxError::Encode {
            id_len: entry.id.len(),
            cause,
        })?;
        let tmp = self.dir.join(format!("{TMP_PREFIX}{name}"));
        let dest = self.dir.join(&name);
        let always = self.sync == OutboxSync::Always;
        let written = write_entry(&tmp, &body, always).and_then(|f| {
            fs::rename(&tmp, &dest)?;
            Ok(f)
        });
        let file = match written {
            Ok(f) => f,
            Err(cause) => {
                // Best effort: a leftover temp file is also removed by the next `open`.
                let _ = fs::remove_file(&tmp);
                return Err(OutboxError::Write { path: dest, cause });
            }
        };
        if always {
            self.sync_dir()?;
        } else {
            // The descriptor still refers to the renamed file: the pass syncs that.
            self.commit
                .submit(file)
                .map_err(|cause| OutboxError::Write { path: dest, cause })?;
        }
        if !self.live.contains_key(&entry.id) {
            self.live.insert(entry.id.clone(), (self.next_seq, name));
            self.next_seq += 1;
        }
        Ok(())
    }

    /// Deletes the entry with this id. Unknown ids are fine (acks can repeat).
    ///
    /// The directory is not synced: if a crash undoes the unlink, the entry is re-sent once
    /// after the restart, which is the same at-least-once outcome as an ack lost in transit
    /// (the scheduler acks duplicates). Persist stays fully durable; this saves one of the
    /// three fsyncs each task used to cost.
    pub fn forget(&mut self, id: &str) -> Result<(), OutboxError> {
        let Some((_, name)) = self.live.get(id) else {
            return Ok(());
        };
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(cause) => return Err(OutboxError::Remove { path, cause }),
        }
        self.live.remove(id);
        Ok(())
    }

    /// Number of entries waiting for an ack.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.live.contains_key(id)
    }

    /// The directory this outbox lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn sync_mode(&self) -> OutboxSync {
        self.sync
    }

    /// Waits until every entry persisted so far is on the disk itself (a no-op in `Always`
    /// mode, where `persist` already did that).
    pub fn flush(&self) -> Result<(), OutboxError> {
        self.commit
            .flush()
            .map_err(|cause| OutboxError::GroupCommit {
                path: self.dir.clone(),
                cause,
            })
    }

    fn sync_dir(&self) -> Result<(), OutboxError> {
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|cause| OutboxError::SyncDir {
            path: dir.to_path_buf(),
            cause,
        })
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn entry_name(seq: u64, id: &str) -> String {
    format!(
        "{seq:0width$}-{}{ENTRY_SUFFIX}",
        id_hash(id),
        width = SEQ_DIGITS
    )
}

/// `(seq, id hash)` of a well-formed entry file name.
fn parse_name(name: &str) -> Option<(u64, &str)> {
    let stem = name.strip_suffix(ENTRY_SUFFIX)?;
    let (seq, hash) = stem.split_once('-')?;
    let ok = seq.len() == SEQ_DIGITS
        && seq.bytes().all(|b| b.is_ascii_digit())
        && hash.len() == HASH_HEX
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !ok {
        return None;
    }
    Some((seq.parse().ok()?, hash))
}

/// Writes header and body with a single write(2) (one syscall on the send path); fsyncs
/// the file when `sync`.
fn write_entry(path: &Path, body: &[u8], sync: bool) -> io::Result<File> {
    let mut f = File::create(path)?;
    let mut bytes = Vec::with_capacity(HEADER_PREFIX.len() + HASH_HEX + 1 + body.len());
    bytes.extend_from_slice(HEADER_PREFIX.as_bytes());
    bytes.extend_from_slice(hex::encode(Sha256::digest(body)).as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(body);
    f.write_all(&bytes)?;
    if sync {
        f.sync_all()?;
    }
    Ok(f)
}

/// Reads and checks one entry file; `Err` says why it cannot be used.
fn read_entry(path: &Path, expected_id_hash: &str) -> Result<OutboxEntry, String> {
    let bytes = fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let (header, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let header = std::str::from_utf8(header).map_err(|_| "header is not UTF-8")?;
    let sum = header.strip_prefix(HEADER_PREFIX).ok_or("unknown header")?;
    if sum != hex::encode(Sha256::digest(body)) {
        return Err("checksum mismatch (torn or damaged write)".into());
    }
    let entry: OutboxEntry =
        serde_json::from_slice(body).map_err(|e| format!("invalid entry: {e}"))?;
    if id_hash(&entry.id) != expected_id_hash {
        return Err("entry id does not match the file name".into());
    }
    Ok(entry)
}

fn quarantine(path: &Path, reason: &str) {
    let mut target = path.as_os_str().to_owned();
    target.push(CORRUPT_SUFFIX);
    match fs::rename(path, &target) {
        Ok(()) => tracing::warn!(
            file = %path.display(), reason, moved_to = %Path::new(&target).display(),
            "quarantined a corrupt outbox entry; its frame will not be re-sent"
        ),
        Err(e) => tracing::warn!(
            file = %path.display(), reason, error = %e,
            "cannot quarantine a corrupt outbox entry; skipping it"
        ),
    }
}

/// Takes an exclusive advisory lock on `<dir>/.lock`, so two workers sharing a data dir
/// cannot re-send and delete each other's entries. The kernel drops it when the process
/// dies, so a SIGKILLed worker never leaves a stale lock.
fn lock_dir(dir: &Path) -> Result<File, OutboxError> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|cause| OutboxError::Lock {
            path: path.clone(),
            cause,
        })?;
    // A lock can outlive its owner by a moment: a previous worker process still exiting, or
    // a child forked by this process that has not yet exec'd (it shares the open file
    // description until then). Retry briefly before reporting another owner.
    let mut waited = std::time::Duration::ZERO;
    let step = std::time::Duration::from_millis(20);
    let mut locked = try_lock(&file);
    while matches!(&locked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        && waited < std::time::Duration::from_secs(2)
    {
        std::thread::sleep(step);
        waited += step;
        locked = try_lock(&file);
    }
    locked.map_err(|cause| match cause.kind() {
        io::ErrorKind::WouldBlock => OutboxError::Locked {
            path: dir.to_path_buf(),
        },
        _ => OutboxError::Lock { path, cause },
    })?;
    Ok(file)
}

// `File::try_lock` needs Rust 1.89; the workspace's MSRV is 1.88.
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: the descriptor belongs to `file`, which outlives this call; flock does not
    // touch memory.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use astra_core::v1::FrameType;
    use astra_core::work::TaskKey;
    use proptest::prelude::*;

    fn entry(id: &str, frame: &str) -> OutboxEntry {
        OutboxEntry {
            id: id.to_string(),
            kind: FrameType::Result,
            task: Some(TaskKey {
                run_id: "r1".into(),
                task_id: format!("t-{id}"),
            }),
            frame: frame.to_string(),
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn reopen(dir: &Path) -> Vec<OutboxEntry> {
        Outbox::open(dir).unwrap().1
    }

    #[test]
    fn persist_reopen_keeps_write_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outbox");
        let written = vec![entry("b", "{\"x\":1}"), entry("a", "f2"), entry("c", "f3")];
        {
            let (mut ob, restored) = Outbox::open(&dir).unwrap();
            assert!(restored.is_empty() && ob.is_empty());
            for e in &written {
                ob.persist(e).unwrap();
            }
            assert_eq!(ob.len(), 3);
        }
        assert_eq!(reopen(&dir), written);
    }

    #[test]
    fn forget_is_durable_and_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
            ob.persist(&entry("a", "1")).unwrap();
            ob.persist(&entry("b", "2")).unwrap();
            ob.forget("a").unwrap();
            ob.forget("a").unwrap();
            ob.forget("never-seen").unwrap();
            assert_eq!(ob.len(), 1);
            assert!(!ob.contains("a") && ob.contains("b"));
        }
        assert_eq!(reopen(tmp.path()), vec![entry("b", "2")]);
    }

    #[test]
    fn persisting_same_id_replaces_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
            ob.persist(&entry("a", "old")).unwrap();
            ob.persist(&entry("b", "b")).unwrap();
            ob.persist(&entry("a", "new")).unwrap();
            assert_eq!(ob.len(), 2);
        }
        assert_eq!(reopen(tmp.path()), vec![entry("a", "new"), entry("b", "b")]);
    }

    #[test]
    fn sequence_continues_after_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
            ob.persist(&entry("a", "1")).unwrap();
            ob.persist(&entry("b", "2")).unwrap();
            ob.forget("a").unwrap();
        }
        {
            let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
            ob.persist(&entry("c", "3")).unwrap();
        }
        assert_eq!(reopen(tmp.path()), vec![entry("b", "2"), entry("c", "3")]);
    }

    #[test]
    fn crash_leftover_temp_file_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
            ob.persist(&entry("a", "1")).unwrap();
        }
        // A crash between create and rename leaves a partial temp file behind.
        let stray = tmp
            .path()
            .join(format!("{TMP_PREFIX}{}", entry_name(1, "b")));
        fs::write(&stray, b"astra-outbox v1 00\n{\"id\":\"b\",").unwrap();
        let (ob, restored) = Outbox::open(tmp.path()).unwrap();
        assert_eq!(restored, vec![entry("a", "1")]);
        assert_eq!(ob.len(), 1);
        assert!(!stray.exists());
    }

    #[test]
    fn corrupt_files_are_quarantined_and_others_load() {
        let tmp = tempfile::tempdir().unwrap();
        let names: Vec<String>;
        {
            let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
            for id in ["a", "b", "c", "d", "e"] {
                ob.persist(&entry(id, id)).unwrap();
            }
            names = ["a", "b", "c", "d", "e"]
                .iter()
                .map(|id| ob.live[*id].1.clone())
                .collect();
        }
        // b: truncated; c: one flipped byte in the body; d: valid entry under another id's
        // name; e: garbage without a header.
        let p = |i: usize| tmp.path().join(&names[i]);
        let full = fs::read(p(1)).unwrap();
        fs::write(p(1), &full[..full.len() - 3]).unwrap();
        let mut flipped = fs::read(p(2)).unwrap();
        let last = flipped.len() - 2;
        flipped[last] ^= 0x01;
        fs::write(p(2), flipped).unwrap();
        fs::write(p(3), fs::read(p(0)).unwrap()).unwrap();
        fs::write(p(4), b"\xff\xfe not an entry").unwrap();

        let (ob, restored) = Outbox::open(tmp.path()).unwrap();
        assert_eq!(restored, vec![entry("a", "a")]);
        assert_eq!(ob.len(), 1);
        for i in 1..5 {
            assert!(!p(i).exists());
            assert!(tmp
                .path()
                .join(format!("{}{CORRUPT_SUFFIX}", names[i]))
                .exists());
        }
        drop(ob);
        // Quarantined files stay put and are not reconsidered.
        assert_eq!(reopen(tmp.path()), vec![entry("a", "a")]);
    }

    #[test]
    fn unreadable_entry_is_quarantined() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
            ob.persist(&entry("a", "a")).unwrap();
        }
        // A directory with an entry's name cannot be read as a file.
        let bogus = tmp.path().join(entry_name(7, "zzz"));
        fs::create_dir(&bogus).unwrap();
        let (_ob, restored) = Outbox::open(tmp.path()).unwrap();
        assert_eq!(restored, vec![entry("a", "a")]);
        assert!(!bogus.exists());
    }

    #[test]
    fn hostile_ids_stay_inside_the_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data/outbox");
        let ids = [
            "../../etc/passwd".to_string(),
            "/abs/path".to_string(),
            "a\0b".to_string(),
            "x".repeat(100_000),
            "résumé-✓-\u{202e}-日本".to_string(),
            ".tmp-looks-temporary".to_string(),
            String::new(),
        ];
        let written: Vec<_> = ids.iter().map(|id| entry(id, "f")).collect();
        {
            let (mut ob, _) = Outbox::open(&dir).unwrap();
            for e in &written {
                ob.persist(e).unwrap();
            }
        }
        assert_eq!(reopen(&dir), written);
        let names = files(&dir);
        assert_eq!(
            names.iter().filter(|n| parse_name(n).is_some()).count(),
            ids.len()
        );
        assert!(
            names
                .iter()
                .all(|n| parse_name(n).is_some() || n == LOCK_FILE),
            "{names:?}"
        );
        // Nothing escaped into the parent directories.
        assert_eq!(files(root.path()), vec!["data".to_string()]);
        assert_eq!(files(&root.path().join("data")), vec!["outbox".to_string()]);
    }

    #[test]
    fn duplicate_id_files_keep_the_later_one() {
        let tmp = tempfile::tempdir().unwrap();
        let first;
        {
            let (mut ob, _) = Outbox::open(tmp.path()).unwrap();
            ob.persist(&entry("a", "old")).unwrap();
            ob.persist(&entry("b", "b")).unwrap();
            first = ob.live["a"].1.clone();
        }
        // A later file for the same id, as if copied in from another outbox.
        let (mut other, _) = Outbox::open(&tmp.path().join("other")).unwrap();
        other.persist(&entry("a", "new")).unwrap();
        let src = tmp.path().join("other").join(&other.live["a"].1);
        fs::copy(src, tmp.path().join(entry_name(9, "a"))).unwrap();
        let (ob, restored) = Outbox::open(tmp.path()).unwrap();
        assert_eq!(restored, vec![entry("b", "b"), entry("a", "new")]);
        assert_eq!(ob.len(), 2);
        assert!(!tmp.path().join(first).exists());
        drop(ob);
        assert_eq!(reopen(tmp.path()), vec![entry("b", "b"), entry("a", "new")]);
    }

    #[test]
    fn second_open_of_same_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (_first, _) = Outbox::open(tmp.path()).unwrap();
        let err = Outbox::open(tmp.path()).unwrap_err();
        assert!(matches!(err, OutboxError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("data_dir"));
    }

    #[test]
    fn unrelated_files_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("README"), b"hi").unwrap();
        let (ob, restored) = Outbox::open(tmp.path()).unwrap();
        assert!(restored.is_empty() && ob.is_empty());
        assert!(tmp.path().join("README").exists());
    }

    #[test]
    fn batch_entry_is_in_place_before_it_is_synced() {
        // What kill -9 leaves behind is the OS's view of the directory: the entry must be
        // complete under its final name as soon as `persist` returns, sync pass or not.
        let tmp = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open_with(tmp.path(), OutboxSync::Batch).unwrap();
        for id in ["a", "b", "c"] {
            ob.persist(&entry(id, id)).unwrap();
            let (seq, name) = ob.live[id].clone();
            let hash = parse_name(&name).unwrap().1;
            assert_eq!(parse_name(&name).unwrap().0, seq);
            assert_eq!(read_entry(&tmp.path().join(&name), hash), Ok(entry(id, id)));
        }
        ob.flush().unwrap();
        assert!(ob.commit.passes() >= 1);
        ob.forget("b").unwrap();
        drop(ob);
        assert_eq!(reopen(tmp.path()), vec![entry("a", "a"), entry("c", "c")]);
    }

    #[test]
    fn batch_mode_groups_many_entries_per_pass_and_flush_waits_for_all() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open_with(tmp.path(), OutboxSync::Batch).unwrap();
        let written: Vec<_> = (0..200).map(|i| entry(&format!("e{i}"), "f")).collect();
        for e in &written {
            ob.persist(e).unwrap();
        }
        ob.flush().unwrap();
        let passes = ob.commit.passes();
        // At least one pass ran, and flush returned only after it covered all 200.
        assert!((1..=200).contains(&passes), "{passes}");
        ob.flush().unwrap();
        assert_eq!(ob.commit.passes(), passes, "nothing new to sync");
        drop(ob);
        assert_eq!(reopen(tmp.path()), written);
    }

    #[test]
    fn always_mode_never_starts_the_commit_thread() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open_with(tmp.path(), OutboxSync::Always).unwrap();
        ob.persist(&entry("a", "a")).unwrap();
        ob.flush().unwrap();
        assert_eq!(ob.commit.passes(), 0);
        assert_eq!(ob.sync_mode(), OutboxSync::Always);
    }

    #[test]
    fn failed_group_commit_stops_the_next_persist() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open_with(&tmp.path().join("ob"), OutboxSync::Batch).unwrap();
        // A committer whose directory cannot be opened: its directory fsync fails.
        ob.commit = GroupCommit::new(&tmp.path().join("missing"));
        ob.persist(&entry("a", "a")).unwrap();
        let err = ob.flush().unwrap_err();
        assert!(matches!(err, OutboxError::GroupCommit { .. }), "{err}");
        let err = ob.persist(&entry("b", "b")).unwrap_err();
        assert!(err.to_string().contains("durable"), "{err}");
        assert!(!ob.contains("b"));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Persist(u8, u8),
        Forget(u8),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, any::<u8>()).prop_map(|(id, v)| Op::Persist(id, v)),
            2 => (0u8..7).prop_map(Op::Forget),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn reopen_yields_live_set_in_write_order(
            ops in proptest::collection::vec(op(), 0..40),
            batch in any::<bool>(),
        ) {
            let mode = if batch { OutboxSync::Batch } else { OutboxSync::Always };
            let tmp = tempfile::tempdir().unwrap();
            let mut model: Vec<OutboxEntry> = Vec::new();
            let (mut ob, _) = Outbox::open_with(tmp.path(), mode).unwrap();
            for op in ops {
                match op {
                    Op::Persist(id, v) => {
                        let e = entry(&format!("id{id}"), &format!("frame{v}"));
                        ob.persist(&e).unwrap();
                        match model.iter_mut().find(|m| m.id == e.id) {
                            Some(slot) => *slot = e,
                            None => model.push(e),
                        }
                    }
                    Op::Forget(id) => {
                        let id = format!("id{id}");
                        ob.forget(&id).unwrap();
                        model.retain(|m| m.id != id);
                    }
                    Op::Reopen => {
                        drop(ob);
                        let (o, restored) = Outbox::open_with(tmp.path(), mode).unwrap();
                        prop_assert_eq!(&restored, &model);
                        ob = o;
                    }
                }
                prop_assert_eq!(ob.len(), model.len());
            }
            drop(ob);
            prop_assert_eq!(reopen(tmp.path()), model);
        }
    }
}
