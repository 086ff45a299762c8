//! Log segment files, `log-<n:020>.seg`: a header, records appended in place, and a zeroed
//! remainder. The zeros are written (not just allocated) when the segment is created, so
//! appending later never changes the file's size or extents: an fdatasync of a segment in
//! use flushes data only, with no journal commit, and appends take no directory or inode
//! locks that other writers on the disk could hold up.

use super::record;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PREFIX: &str = "log-";
const SUFFIX: &str = ".seg";
const DIGITS: usize = 20;
const ZERO_CHUNK: usize = 64 * 1024;

pub fn name(no: u64) -> String {
    format!("{PREFIX}{no:0DIGITS$}{SUFFIX}")
}

/// The number of a segment file name.
pub fn parse(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment being appended to.
#[derive(Debug)]
pub struct Segment {
    pub no: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Where the next record goes.
    pub pos: u64,
    /// The preallocated (zeroed) length.
    pub size: u64,
}

impl Segment {
    /// Creates segment `no` (which must not exist) holding the header and `body`, zeroed up
    /// to at least `size` bytes. Not synced: the caller decides when.
    pub fn create(dir: &Path, no: u64, size: u64, body: &[u8]) -> io::Result<Segment> {
        let path = dir.join(name(no));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let header = record::segment_header();
        file.write_all_at(&header, 0)?;
        file.write_all_at(body, header.len() as u64)?;
        let pos = (header.len() + body.len()) as u64;
        let size = size.max(pos);
        // In small chunks: one segment-sized buffer would raise glibc's mmap threshold
        // for good and leave later allocations resident in the heap (+1 MB idle RSS).
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut at = pos;
        while at < size {
            let n = (size - at).min(ZERO_CHUNK as u64) as usize;
            file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(Segment {
            no,
            path,
            file: Arc::new(file),
            pos,
            size,
        })
    }

    /// Opens an existing segment to append at `end` (the end of its last good record; the
    /// bytes after it are zeros, which the caller checked).
    pub fn reopen(dir: &Path, no: u64, end: u64) -> io::Result<Segment> {
        let path = dir.join(name(no));
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let size = file.metadata()?.len().max(end);
        Ok(Segment {
            no,
            path,
            file: Arc::new(file),
            pos: end,
            size,
        })
    }

    pub fn fits(&self, len: usize) -> bool {
        self.pos + len as u64 <= self.size
    }

    /// Appends framed bytes; returns their offset.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let at = self.pos;
        self.file.write_all_at(bytes, at)?;
        self.pos += bytes.len() as u64;
        self.size = self.size.max(self.pos);
        Ok(at)
    }

    pub fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        assert_eq!(parse(&name(42)), Some(42));
        assert_eq!(parse(&name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "log-1.seg",
            "log-0000000000000000000x.seg",
            "x.seg",
            "log-.seg",
            ".lock",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn create_zero_fills_and_append_stays_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Segment::create(tmp.path(), 3, 4096, b"abc").unwrap();
        assert_eq!(s.pos, (record::SEGMENT_HEADER + 3) as u64);
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), 4096);
        let at = s.append(b"xyz").unwrap();
        assert_eq!(s.read_at(at, 3).unwrap(), b"xyz");
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), 4096);
        assert!(
            Segment::create(tmp.path(), 3, 4096, b"").is_err(),
            "never overwrites"
        );
    }
}
