//! Group commit for `outbox_sync = batch`: entries are written and renamed into place on the
//! send path (the OS has them, so they survive kill -9), and this thread makes them durable
//! against power loss off that path: one pass fdatasyncs every file written since the last
//! pass and then fsyncs the directory once. While a pass runs new entries queue up, so under
//! load one pass covers many entries; power loss loses at most the entries of the pass in
//! flight (the window).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

#[derive(Default)]
struct State {
    /// Written but not yet synced, in write order.
    pending: Vec<File>,
    /// Entries handed over so far, and how many of them are known durable.
    written: u64,
    synced: u64,
    /// The first failure, reported to the next caller; later passes still run.
    error: Option<String>,
    stop: bool,
    passes: u64,
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

/// The committer of one outbox directory; its thread starts with the first entry.
pub(super) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
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
        }
    }

    /// A failed earlier pass, if any: the caller must stop trusting the outbox.
    pub fn error(&self) -> Option<String> {
        self.shared.lock().error.clone()
    }

    /// Queues `file` (already written and renamed into place) for the next pass. When the
    /// thread cannot be started, syncs inline instead, so durability never silently drops.
    pub fn submit(&mut self, file: File) -> io::Result<()> {
        if self.thread.is_none() {
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name("astra-outbox-sync".into())
                .spawn(move || run(&shared))
            {
                Ok(h) => self.thread = Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the outbox sync thread; syncing each entry before it is sent");
                    file.sync_data()?;
                    return sync_dir(&self.shared.dir);
                }
            }
        }
        let mut st = self.shared.lock();
        st.pending.push(file);
        st.written += 1;
        drop(st);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Blocks until every entry submitted before this call is durable (or a pass failed).
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

    /// Completed passes (each is one fdatasync per entry plus one directory fsync).
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
        let (batch, upto) = {
            let mut st = shared.lock();
            while st.pending.is_empty() && !st.stop {
                st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.pending.is_empty() {
                return;
            }
            (std::mem::take(&mut st.pending), st.written)
        };
        let result = sync_batch(&batch).and_then(|()| sync_dir(&shared.dir));
        let mut st = shared.lock();
        match result {
            Ok(()) => st.synced = upto,
            Err(e) => {
                tracing::error!(dir = %shared.dir.display(), error = %e, "cannot make outbox entries durable");
                st.error.get_or_insert_with(|| e.to_string());
            }
        }
        st.passes += 1;
        drop(st);
        shared.changed.notify_all();
    }
}

/// Makes every file of `batch` durable with as few journal commits as possible: ext4 (and
/// xfs) allocate a delayed-allocation file's blocks when its data is written back, so an
/// fdatasync per file would commit the journal once per file (each allocation dirtying the
/// running transaction again) and a pass would grow with its batch. Starting the write-back
/// of all of them first puts every allocation in one transaction; the first fdatasync then
/// commits it and the rest find their data and metadata already on disk.
fn sync_batch(batch: &[File]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        for f in batch {
            // SAFETY: plain syscall on a descriptor `f` owns; no memory is passed.
            // A failure only loses the optimisation: fdatasync below still decides.
            unsafe {
                libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
    }
    batch.iter().try_for_each(|f| f.sync_data())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
