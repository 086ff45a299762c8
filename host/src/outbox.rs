//! Durable outbox: terminal and package-event frames kept on disk until the scheduler acks them.
//!
//! An append-only log in `data_dir/outbox`: segment files (`segment`) of checksummed records
//! (`record`): a *put* per persisted entry, an *ack* per forgotten one. Appending touches no
//! directory or inode (segments are zero-filled when created), so the send path costs one
//! `pwrite`. When the segment in use is full, the live entries are copied into a new segment
//! ending in a *checkpoint* record, which supersedes every earlier segment; those are then
//! deleted. Replay on open reads the segments in order and yields the entries not acked, in
//! the order they were first written; a torn or damaged tail (power loss, bit rot, a hostile
//! file) is cut at its first bad record with a warning naming the file and the offset.
//! A data dir in the previous one-file-per-entry format (`legacy`) is replayed and migrated
//! into the log on open, so nothing is lost on upgrade.
//!
//! Crash safety: a put is in the OS before `persist` returns, so kill -9 cannot lose it.
//! Against power loss, [`OutboxSync`] chooses: `Always` fdatasyncs the segment before
//! `persist` returns (data only: the segment's size and extents do not change); `Batch` (the
//! default) leaves that to a group commit thread off the send path (see `group_commit`), so
//! power loss can lose the entries of the last pass, and a torn record is caught by its
//! checksum. Acks are not synced (see [`Outbox::forget`]). On a filesystem that lives in
//! memory (tmpfs, ramfs) there is nothing to make durable, so `Batch` skips the group commit.

use astra_core::worker::OutboxEntry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

mod group_commit;
mod legacy;
mod record;
mod segment;
use group_commit::GroupCommit;
use segment::Segment;

const LOCK_FILE: &str = ".lock";
/// Preallocated size of a segment: about 2,000 typical results before the log rolls over.
const SEGMENT_BYTES: u64 = 1 << 20;

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
    #[error("cannot write the outbox log {path}: {cause} (is the disk full or read-only?)")]
    Write { path: PathBuf, cause: io::Error },
    #[error(
        "cannot record an ack in the outbox log {path}: {cause} (is the disk full or read-only?)"
    )]
    Forget { path: PathBuf, cause: io::Error },
    #[error("cannot sync the outbox directory {path}: {cause}")]
    SyncDir { path: PathBuf, cause: io::Error },
    #[error("cannot make outbox entries in {path} durable: {cause} (is the disk failing? outbox_sync = always reports this per entry)")]
    GroupCommit { path: PathBuf, cause: String },
    #[error("cannot encode outbox entry for frame id of {id_len} bytes: {cause}")]
    Encode { id_len: usize, cause: String },
}

/// `outbox_sync`: when a persisted entry is flushed to the disk itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxSync {
    /// Written (in the OS, survives kill -9) before the send; a group commit off the send
    /// path makes it survive power loss shortly after.
    #[default]
    Batch,
    /// fdatasync of the log before every send.
    Always,
}

/// Where a live entry's latest put is in the segment in use.
#[derive(Debug, Clone, Copy)]
struct Live {
    /// Position in write order (kept when the entry is rewritten).
    ord: u64,
    offset: u64,
    len: usize,
}

/// The on-disk outbox. One per data dir; the directory is locked while it is open.
pub struct Outbox {
    dir: PathBuf,
    sync: OutboxSync,
    /// Declared before `_lock`: dropping it finishes the pending pass while still locked.
    commit: GroupCommit,
    seg: Segment,
    /// The segment was created and not yet handed to the group commit (batch mode): its
    /// directory entry still needs an fsync.
    unannounced: bool,
    segment_bytes: u64,
    /// The directory is in memory (tmpfs, ramfs): nothing survives power loss whatever is
    /// synced, so `Batch` mode skips the group commit (and its wake-up per entry).
    volatile: bool,
    live: HashMap<String, Live>,
    /// `ord` → id, for write order.
    order: BTreeMap<u64, String>,
    next_ord: u64,
    /// Held for the lifetime of the outbox: the advisory lock dies with the process.
    _lock: File,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.dir)
            .field("sync", &self.sync)
            .field("segment", &self.seg.path)
            .field("live", &self.live.len())
            .finish_non_exhaustive()
    }
}

/// The live set while replaying: entries with their framed put records, in write order.
#[derive(Default)]
struct Replay {
    live: HashMap<String, (u64, OutboxEntry, Vec<u8>, Option<u64>)>,
    order: BTreeMap<u64, String>,
    next_ord: u64,
}

impl Replay {
    /// A put: replaces an entry with the same id in place, else appends. `offset` is where
    /// the record is in the segment being read (`None` when it came from elsewhere).
    fn put(&mut self, entry: OutboxEntry, raw: Vec<u8>, offset: Option<u64>) {
        let ord = match self.live.get(&entry.id) {
            Some((ord, ..)) => *ord,
            None => {
                let ord = self.next_ord;
                self.next_ord += 1;
                self.order.insert(ord, entry.id.clone());
                ord
            }
        };
        self.live
            .insert(entry.id.clone(), (ord, entry, raw, offset));
    }

    fn ack(&mut self, id: &str) {
        if let Some((ord, ..)) = self.live.remove(id) {
            self.order.remove(&ord);
        }
    }

    /// Applies the records of one segment (`bytes` is its content).
    fn segment(&mut self, bytes: &[u8], records: Vec<record::Located>) {
        // Ids put in this segment, in first-put order: a checkpoint keeps only these.
        let mut here: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for loc in records {
            match loc.record {
                record::Record::Put(entry) => {
                    if seen.insert(entry.id.clone()) {
                        here.push(entry.id.clone());
                    }
                    let raw = bytes[loc.offset..loc.offset + loc.len].to_vec();
                    self.put(entry, raw, Some(loc.offset as u64));
                }
                record::Record::Ack(id) => self.ack(&id),
                record::Record::Checkpoint => {
                    let kept: Vec<_> = here.iter().filter_map(|id| self.live.remove(id)).collect();
                    *self = Replay::default();
                    for (_, entry, raw, offset) in kept {
                        self.put(entry, raw, offset);
                    }
                }
            }
        }
    }

    /// Every entry in write order.
    fn in_order(&self) -> impl Iterator<Item = &(u64, OutboxEntry, Vec<u8>, Option<u64>)> {
        self.order.values().filter_map(|id| self.live.get(id))
    }
}

impl Outbox {
    /// [`Outbox::open_with`] in `OutboxSync::Always` mode.
    pub fn open(dir: &Path) -> Result<(Outbox, Vec<OutboxEntry>), OutboxError> {
        Self::open_with(dir, OutboxSync::Always)
    }

    /// Opens (creating if needed) the outbox in `dir` and returns the entries still waiting
    /// for an ack, in the order they were first written. Entries in the previous
    /// one-file-per-entry format are included and migrated into the log; damaged segments
    /// and entry files are renamed to `*.corrupt` with a warning.
    pub fn open_with(
        dir: &Path,
        sync: OutboxSync,
    ) -> Result<(Outbox, Vec<OutboxEntry>), OutboxError> {
        Self::open_sized(dir, sync, SEGMENT_BYTES)
    }

    fn open_sized(
        dir: &Path,
        sync: OutboxSync,
        segment_bytes: u64,
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
        let read_dir_err = |cause| OutboxError::ReadDir {
            path: dir.to_path_buf(),
            cause,
        };
        let mut segments: BTreeMap<u64, PathBuf> = BTreeMap::new();
        let mut old_names: Vec<String> = Vec::new();
        for item in fs::read_dir(dir).map_err(read_dir_err)? {
            let item = item.map_err(read_dir_err)?;
            let Ok(name) = item.file_name().into_string() else {
                tracing::warn!(dir = %dir.display(), "ignoring a non-UTF-8 file name in the outbox");
                continue;
            };
            if name == LOCK_FILE || name.ends_with(legacy::CORRUPT_SUFFIX) {
                continue;
            }
            if let Some(no) = segment::parse(&name) {
                segments.insert(no, dir.join(&name));
            } else if legacy::owns(&name) {
                old_names.push(name);
            } else {
                tracing::warn!(file = %dir.join(&name).display(), "ignoring a file that is not part of the outbox");
            }
        }

        let mut replay = Replay::default();
        // The segment to append to when it is the only one and undamaged: (number, end).
        let mut reusable = None;
        let mut damaged = false;
        for (&no, path) in &segments {
            let bytes = match fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    legacy::quarantine(path, &format!("unreadable: {e}"));
                    damaged = true;
                    continue;
                }
            };
            if let Err(reason) = record::check_header(&bytes) {
                legacy::quarantine(path, &reason);
                damaged = true;
                continue;
            }
            let scan = record::scan(&bytes);
            if let Some((offset, reason)) = &scan.cut {
                tracing::warn!(
                    file = %path.display(), offset, reason = %reason,
                    "the outbox log has a torn or damaged record; cutting it there (records after it are lost)"
                );
                damaged = true;
            }
            reusable = Some((no, scan.end as u64));
            replay.segment(&bytes, scan.records);
        }
        let old = legacy::read(dir, &old_names);
        for entry in &old.entries {
            let raw = record::put(entry).map_err(|cause| OutboxError::Encode {
                id_len: entry.id.len(),
                cause,
            })?;
            replay.put(entry.clone(), raw, None);
        }
        let entries: Vec<OutboxEntry> = replay.in_order().map(|(_, e, ..)| e.clone()).collect();

        let mut outbox = match reusable {
            Some((no, end)) if segments.len() == 1 && !damaged && old.is_empty() => {
                let seg = Segment::reopen(dir, no, end).map_err(|cause| OutboxError::Write {
                    path: dir.join(segment::name(no)),
                    cause,
                })?;
                let mut outbox = Outbox::new(dir, sync, seg, segment_bytes, lock);
                for (ord, entry, raw, offset) in replay.in_order() {
                    // Every record came from this one segment, so each has its offset.
                    let offset = offset.unwrap_or_default();
                    outbox.track(&entry.id, *ord, offset, raw.len());
                }
                outbox.next_ord = replay.next_ord;
                outbox
            }
            _ => {
                let no = segments.keys().next_back().map_or(0, |n| n + 1);
                let records: Vec<(&str, &[u8])> = replay
                    .in_order()
                    .map(|(_, e, raw, _)| (e.id.as_str(), raw.as_slice()))
                    .collect();
                let (seg, offsets) = write_segment(dir, no, segment_bytes, &records)?;
                let mut outbox = Outbox::new(dir, sync, seg, segment_bytes, lock);
                for (i, ((id, raw), offset)) in records.iter().zip(offsets).enumerate() {
                    outbox.track(id, i as u64, offset, raw.len());
                }
                outbox.next_ord = records.len() as u64;
                let replaced: Vec<PathBuf> = segments.into_values().collect();
                outbox.unannounced = true;
                if sync == OutboxSync::Always || !replaced.is_empty() || !old.is_empty() {
                    // Migrating or repairing: the new segment must be durable before what it
                    // replaces is deleted, whatever the mode (this runs at start-up only).
                    outbox.sync_segment_now()?;
                    group_commit::remove_obsolete(replaced);
                    group_commit::remove_obsolete(old.files.clone());
                    if !old.is_empty() {
                        tracing::info!(dir = %dir.display(), entries = old.entries.len(), "migrated the outbox to the log format");
                        outbox.sync_dir()?;
                    }
                }
                outbox
            }
        };
        outbox.next_ord = outbox.next_ord.max(outbox.live.len() as u64);
        Ok((outbox, entries))
    }

    fn new(dir: &Path, sync: OutboxSync, seg: Segment, segment_bytes: u64, lock: File) -> Outbox {
        Outbox {
            dir: dir.to_path_buf(),
            sync,
            commit: GroupCommit::new(dir),
            seg,
            unannounced: false,
            segment_bytes,
            volatile: in_memory(dir),
            live: HashMap::new(),
            order: BTreeMap::new(),
            next_ord: 0,
            _lock: lock,
        }
    }

    fn track(&mut self, id: &str, ord: u64, offset: u64, len: usize) {
        self.live.insert(id.to_string(), Live { ord, offset, len });
        self.order.insert(ord, id.to_string());
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
        let rec = record::put(entry).map_err(|cause| OutboxError::Encode {
            id_len: entry.id.len(),
            cause,
        })?;
        if !self.seg.fits(rec.len()) && self.seg.pos > record::SEGMENT_HEADER as u64 {
            return self.roll_over(Some((&entry.id, &rec)));
        }
        let offset = self
            .seg
            .append(&rec)
            .map_err(|cause| self.write_error(cause))?;
        match self.live.get_mut(&entry.id) {
            Some(l) => {
                l.offset = offset;
                l.len = rec.len();
            }
            None => {
                let ord = self.next_ord;
                self.next_ord += 1;
                self.track(&entry.id, ord, offset, rec.len());
            }
        }
        self.make_durable(Vec::new())
    }

    /// Deletes the entry with this id. Unknown ids are fine (acks can repeat).
    ///
    /// The ack record is not synced: if a crash loses it, the entry is re-sent once after
    /// the restart, which is the same at-least-once outcome as an ack lost in transit (the
    /// scheduler acks duplicates).
    pub fn forget(&mut self, id: &str) -> Result<(), OutboxError> {
        let Some(l) = self.live.remove(id) else {
            return Ok(());
        };
        self.order.remove(&l.ord);
        let rec = record::ack(id);
        if !self.seg.fits(rec.len()) {
            // The new segment's checkpoint leaves the entry out: no ack record needed.
            return self.roll_over(None);
        }
        self.seg
            .append(&rec)
            .map(drop)
            .map_err(|cause| OutboxError::Forget {
                path: self.seg.path.clone(),
                cause,
            })
    }

    /// Copies the live entries (with `extra`, a put not yet written, in its place) into a
    /// new segment ending in a checkpoint, and retires the current one.
    fn roll_over(&mut self, extra: Option<(&str, &[u8])>) -> Result<(), OutboxError> {
        let mut raws: Vec<(String, Vec<u8>)> = Vec::with_capacity(self.live.len() + 1);
        for id in self.order.values() {
            let raw = match extra {
                Some((x, rec)) if x == id => rec.to_vec(),
                _ => {
                    let l = self.live[id];
                    self.seg
                        .read_at(l.offset, l.len)
                        .map_err(|cause| self.write_error(cause))?
                }
            };
            raws.push((id.clone(), raw));
        }
        if let Some((x, rec)) = extra {
            if !self.live.contains_key(x) {
                raws.push((x.to_string(), rec.to_vec()));
            }
        }
        let records: Vec<(&str, &[u8])> = raws
            .iter()
            .map(|(id, raw)| (id.as_str(), raw.as_slice()))
            .collect();
        let (seg, offsets) =
            write_segment(&self.dir, self.seg.no + 1, self.segment_bytes, &records)?;
        let old = std::mem::replace(&mut self.seg, seg);
        let (live, order) = (
            std::mem::take(&mut self.live),
            std::mem::take(&mut self.order),
        );
        for ((id, raw), offset) in raws.iter().zip(offsets) {
            let ord = match live.get(id) {
                Some(l) => l.ord,
                None => {
                    let ord = self.next_ord;
                    self.next_ord += 1;
                    ord
                }
            };
            self.track(id, ord, offset, raw.len());
        }
        drop(order);
        self.unannounced = true;
        self.make_durable(vec![old.path])
    }

    /// After an append: `Always` syncs now, `Batch` hands over to the group commit.
    fn make_durable(&mut self, obsolete: Vec<PathBuf>) -> Result<(), OutboxError> {
        match self.sync {
            OutboxSync::Always => {
                self.sync_segment_now()?;
                group_commit::remove_obsolete(obsolete);
                Ok(())
            }
            OutboxSync::Batch if self.volatile => {
                group_commit::remove_obsolete(obsolete);
                Ok(())
            }
            OutboxSync::Batch => {
                let announce = std::mem::take(&mut self.unannounced);
                let handed = if announce {
                    self.commit.switch(&self.seg.file, obsolete)
                } else {
                    self.commit.submit(&self.seg.file)
                };
                handed.map_err(|cause| self.write_error(cause))
            }
        }
    }

    /// Syncs the segment in use, and its directory entry if that is new.
    fn sync_segment_now(&mut self) -> Result<(), OutboxError> {
        self.seg
            .file
            .sync_data()
            .map_err(|cause| self.write_error(cause))?;
        if std::mem::take(&mut self.unannounced) {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn write_error(&self, cause: io::Error) -> OutboxError {
        OutboxError::Write {
            path: self.seg.path.clone(),
            cause,
        }
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

/// Creates segment `no` holding `records` (framed puts) and a checkpoint; returns it and the
/// offset of each record. Sized so that the copied entries fill at most half of it.
fn write_segment(
    dir: &Path,
    no: u64,
    segment_bytes: u64,
    records: &[(&str, &[u8])],
) -> Result<(Segment, Vec<u64>), OutboxError> {
    let mut body = Vec::new();
    let mut offsets = Vec::with_capacity(records.len());
    for (_, raw) in records {
        offsets.push((record::SEGMENT_HEADER + body.len()) as u64);
        body.extend_from_slice(raw);
    }
    body.extend_from_slice(&record::checkpoint());
    let size = segment_bytes.max(2 * (record::SEGMENT_HEADER + body.len()) as u64);
    let seg = Segment::create(dir, no, size, &body).map_err(|cause| OutboxError::Write {
        path: dir.join(segment::name(no)),
        cause,
    })?;
    Ok((seg, offsets))
}

/// True when `dir` is on a filesystem that lives in memory only.
#[cfg(target_os = "linux")]
fn in_memory(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string and `st` a properly sized out-buffer
    // that statfs fills; both outlive the call.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } != 0 {
        return false;
    }
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    // `f_type` and the constant have different integer types on different targets.
    #[allow(clippy::unnecessary_cast)]
    let (kind, tmpfs) = (st.f_type as i64, libc::TMPFS_MAGIC as i64);
    kind == tmpfs || kind == RAMFS_MAGIC
}

#[cfg(not(target_os = "linux"))]
fn in_memory(_dir: &Path) -> bool {
    false
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    group_commit::sync_dir(dir).map_err(|cause| OutboxError::SyncDir {
        path: dir.to_path_buf(),
        cause,
    })
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
mod tests;
