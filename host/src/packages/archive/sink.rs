//! The only code that writes extracted bytes: checks each entry's path, refuses duplicates,
//! and counts every byte written against the [`ExtractLimits`].

use super::{ArchiveError, ExtractLimits};
use crate::packages::relpath;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

pub(crate) struct Sink<'a> {
    root: &'a Path,
    limits: &'a ExtractLimits,
    archive_len: u64,
    entries: u64,
    total: u64,
    seen: HashMap<PathBuf, Kind>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(root: &'a Path, limits: &'a ExtractLimits, archive_len: u64) -> Self {
        Sink {
            root,
            limits,
            archive_len,
            entries: 0,
            total: 0,
            seen: HashMap::new(),
        }
    }

    pub(crate) fn limits(&self) -> &'a ExtractLimits {
        self.limits
    }

    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    pub(crate) fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Counts one archive entry of any kind (including rejected or skipped ones).
    pub(crate) fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    fn rel_path(&self, raw: &str) -> Result<Option<PathBuf>, ArchiveError> {
        relpath::normalize(raw, self.limits.paths).map_err(|reason| ArchiveError::UnsafePath {
            entry: raw.to_string(),
            reason,
        })
    }

    /// Records `rel` and its parents; a path may be a directory many times but a file once.
    fn claim(&mut self, raw: &str, rel: &Path, kind: Kind) -> Result<(), ArchiveError> {
        let dup = || ArchiveError::Duplicate {
            entry: raw.to_string(),
        };
        for parent in rel.ancestors().skip(1) {
            if parent.as_os_str().is_empty() {
                break;
            }
            match self.seen.get(parent) {
                Some(Kind::File) => return Err(dup()),
                Some(Kind::Dir) => {}
                None => {
                    self.seen.insert(parent.to_path_buf(), Kind::Dir);
                }
            }
        }
        match (self.seen.get(rel), kind) {
            (None, _) => {
                self.seen.insert(rel.to_path_buf(), kind);
                Ok(())
            }
            (Some(Kind::Dir), Kind::Dir) => Ok(()),
            _ => Err(dup()),
        }
    }

    pub(crate) fn dir(&mut self, raw: &str) -> Result<(), ArchiveError> {
        let Some(rel) = self.rel_path(raw)? else {
            return Ok(());
        };
        self.claim(raw, &rel, Kind::Dir)?;
        let path = self.root.join(&rel);
        fs::create_dir_all(&path).map_err(|source| ArchiveError::Write { path, source })
    }

    /// Writes one regular file, reading `data` to its end. `compressed` is the entry's
    /// compressed size when the format stores one per entry (zip).
    pub(crate) fn file(
        &mut self,
        raw: &str,
        data: &mut dyn Read,
        compressed: Option<u64>,
        executable: bool,
        format: &'static str,
    ) -> Result<(), ArchiveError> {
        let Some(rel) = self.rel_path(raw)? else {
            return Err(ArchiveError::UnsafePath {
                entry: raw.to_string(),
                reason: "names the archive root but is a file".into(),
            });
        };
        self.claim(raw, &rel, Kind::File)?;
        let path = self.root.join(&rel);
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ArchiveError::Write { path, source }
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        let mut options = OpenOptions::new();
        // create_new: never overwrite, and never follow anything already at `path`.
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Keep only "is executable"; setuid/setgid/sticky and odd modes are not carried over.
            options.mode(if executable { 0o755 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = executable;
        let mut out = options.open(&path).map_err(write_err(&path))?;

        let l = self.limits;
        let mut buf = vec![0u8; 64 * 1024];
        let mut written: u64 = 0;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(format, e, l)),
            };
            written += n as u64;
            self.total += n as u64;
            // Checked before writing, so a rejected file never reaches the disk in full.
            if written > l.max_file_bytes {
                return Err(ArchiveError::FileTooLarge {
                    entry: raw.to_string(),
                    limit: l.max_file_bytes,
                });
            }
            if self.total > l.max_total_bytes {
                return Err(ArchiveError::TotalTooLarge {
                    limit: l.max_total_bytes,
                });
            }
            let entry_bomb = compressed.is_some_and(|c| {
                written > l.ratio_floor_bytes && written > c.max(1).saturating_mul(l.max_ratio)
            });
            let archive_bomb = self.total > l.ratio_floor_bytes
                && self.total > self.archive_len.max(1).saturating_mul(l.max_ratio);
            if entry_bomb || archive_bomb {
                return Err(ArchiveError::RatioExceeded {
                    entry: raw.to_string(),
                    limit: l.max_ratio,
                });
            }
            out.write_all(&buf[..n]).map_err(write_err(&path))?;
        }
        Ok(())
    }
}

/// Marker carried inside an `io::Error` when a capped input stream runs over its cap.
#[derive(Debug)]
pub(crate) struct StreamCapExceeded;

impl std::fmt::Display for StreamCapExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("archive stream exceeds its size cap")
    }
}

impl std::error::Error for StreamCapExceeded {}

/// Maps a read error from a decoder to the right [`ArchiveError`].
pub(crate) fn read_error(format: &'static str, e: io::Error, l: &ExtractLimits) -> ArchiveError {
    let capped = e
        .get_ref()
        .is_some_and(|inner| inner.is::<StreamCapExceeded>());
    if capped {
        ArchiveError::TotalTooLarge {
            limit: l.max_total_bytes,
        }
    } else {
        ArchiveError::Corrupt {
            format,
            reason: e.to_string(),
        }
    }
}

/// A reader that fails once more than `cap` bytes have been read, bounding how much a hostile
/// stream can make a decoder buffer (tar reads long-name and pax headers into memory).
pub(crate) struct CappedReader<R> {
    inner: R,
    remaining: u64,
}

impl<R> CappedReader<R> {
    pub(crate) fn new(inner: R, cap: u64) -> Self {
        CappedReader {
            inner,
            remaining: cap,
        }
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // Distinguish "exactly at the cap and finished" from "more is coming".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(StreamCapExceeded)),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}
