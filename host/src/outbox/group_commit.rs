//! Group commit for `outbox_sync = batch`: records are appended to the log segment on the
//! send path (the OS has them, so they survive kill -9), and this thread makes them durable
//! against power loss off that path: one pass is one fdatasync of the segment in use, plus a
//! directory fsync when a new segment was created since the last pass (after which the
//! segments it replaced are deleted). While a pass runs new records queue up, so under load
//! one pass covers many entries; power loss loses at most the entries of the pass in flight.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

#[derive(Default)]
struct State {
    /// The segment in use; it holds every live entry, so syncing it is enough.
    file: Option<Arc<File>>,
    /// A segment was created since the last pass: its directory entry needs an fsync.
    new_segment: bool,
    /// Segments superseded by the one in use, deleted once that one is durable.
    obsolete: Vec<PathBuf>,
    /// Records handed over so far, and how many of them are known durable.
    written: u64,
    synced: u64,
    /// The first failure, reported to the next caller; later passes still run.
    error: Option<String>,
    stop: bool,
    passes: u64,
    /// The thread waits for work: only then does a hand-over need a wake-up (a futex call
    /// on the send path); during a pass it re-checks `written` when the pass ends.
    sleeping: bool,
}

struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    /// Signals both ways: new work for the thread, a finished pass for `flush`.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Updates are plain field assignments done whole; a poisoned state is consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The committer of one outbox directory; its thread starts with the first record.
pub(super) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The thread could not be started: every submit syncs inline instead.
    inline: bool,
}

impl GroupCommit {
    pub fn new(dir: &Path) -> Self {
        GroupCommit {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
            thread: None,
            inline: false,
        }
    }

    /// A failed earlier pass, if any: the caller must stop trusting the outbox.
    pub fn error(&self) -> Option<String> {
        self.shared.lock().error.clone()
    }

    /// Queues a record just appended to `file` (the segment in use) for the next pass.
    pub fn submit(&mut self, file: &Arc<File>) -> io::Result<()> {
        self.hand_over(file, false, Vec::new())
    }

    /// `file` is a new segment holding every live entry; `obsolete` are the segments it
    /// replaces, deleted once it is durable.
    pub fn switch(&mut self, file: &Arc<File>, obsolete: Vec<PathBuf>) -> io::Result<()> {
        self.hand_over(file, true, obsolete)
    }

    fn hand_over(
        &mut self,
        file: &Arc<File>,
        new_segment: bool,
        obsolete: Vec<PathBuf>,
    ) -> io::Result<()> {
        if self.thread.is_none() && !self.inline {
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name("astra-outbox-sync".into())
                .spawn(move || run(&shared))
            {
                Ok(h) => self.thread = Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the outbox sync thread; syncing each entry before it is sent");
                    self.inline = true;
                }
            }
        }
        if self.inline {
            // So durability never silently drops.
            return pass(&self.shared.dir, file, new_segment, obsolete);
        }
        let mut st = self.shared.lock();
        st.file = Some(file.clone());
        st.new_segment |= new_segment;
        st.obsolete.extend(obsolete);
        st.written += 1;
        let wake = st.sleeping;
        drop(st);
        if wake {
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// Blocks until every record submitted before this call is durable (or a pass failed).
    pub fn flush(&self) -> Result<(), String> {
        let mut st = self.shared.lock();
        let target = st.written;
        while st.synced < target && st.error.is_none() && self.thread.is_some() {
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
        st.error.clone().map_or(Ok(()), Err)
    }

    /// Completed passes.
    #[cfg(test)]
    pub fn passes(&self) -> u64 {
        self.shared.lock().passes
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        if let Some(h) = self.thread.take() {
            // The thread finishes what is pending before it sees `stop`.
            self.shared.lock().stop = true;
            self.shared.changed.notify_all();
            let _ = h.join();
        }
    }
}

fn run(shared: &Shared) {
    loop {
        let (file, new_segment, obsolete, upto) = {
            let mut st = shared.lock();
            while st.synced == st.written && !st.stop {
                st.sleeping = true;
                st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
                st.sleeping = false;
            }
            if st.synced == st.written {
                return;
            }
            let Some(file) = st.file.clone() else {
                // Unreachable: `written` only grows together with `file` being set.
                st.synced = st.written;
                continue;
            };
            (
                file,
                std::mem::take(&mut st.new_segment),
                std::mem::take(&mut st.obsolete),
                st.written,
            )
        };
        let result = pass(&shared.dir, &file, new_segment, obsolete);
        let mut st = shared.lock();
        match result {
            Ok(()) => st.synced = upto,
            Err(e) => {
                tracing::error!(dir = %shared.dir.display(), error = %e, "cannot make outbox entries durable");
                st.error.get_or_insert_with(|| e.to_string());
                // Nothing more to wait for: `flush` reports the error.
                st.synced = upto;
            }
        }
        st.passes += 1;
        drop(st);
        shared.changed.notify_all();
    }
}

/// One pass: the segment's data, its directory entry when it is new, then the cleanup.
fn pass(dir: &Path, file: &File, new_segment: bool, obsolete: Vec<PathBuf>) -> io::Result<()> {
    file.sync_data()?;
    if new_segment {
        sync_dir(dir)?;
    }
    remove_obsolete(obsolete);
    Ok(())
}

/// Deletes replaced segments. Not synced: a segment that comes back after a crash is
/// superseded by the checkpoint of the one that replaced it.
pub(super) fn remove_obsolete(paths: Vec<PathBuf>) {
    for p in paths {
        if let Err(e) = std::fs::remove_file(&p) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = %p.display(), error = %e, "cannot delete a replaced outbox segment; it is ignored on the next start");
            }
        }
    }
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
