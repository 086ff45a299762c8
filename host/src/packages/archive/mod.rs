//! Safe extraction of package archives (zip, tar, tar.gz) into a fresh directory.
//!
//! Archives come from the network and are hostile until proven otherwise. The extractor never
//! lets the archive choose where bytes land: it writes every file itself, after a lexical path
//! check ([`super::relpath`]), with `create_new` so nothing existing is overwritten or followed.
//!
//! **Links:** every symlink and hardlink entry is rejected, not only those pointing outside.
//! Packages are Python sources and data and never need links; judging whether a link "stays
//! inside" is subtle (chains of links, a later entry written *through* an earlier link, a
//! hardlink sharing an inode with a file outside), and a package that ships one can replace it
//! with a copy. Device, FIFO and socket entries are rejected for the same reason.
//!
//! Limits ([`ExtractLimits`]) are enforced on bytes actually written, never on sizes claimed by
//! headers, so a lying header cannot sneak a zip bomb past them.

mod detect;
mod from_tar;
mod from_zip;
mod sink;

pub use detect::{detect_format, ArchiveFormat};

use super::relpath::PathLimits;
use std::path::{Path, PathBuf};

/// Bounds on what an archive may expand to. The defaults are generous for real packages
/// (the example package is a few dozen KiB) and small enough to protect a worker's disk.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Most entries (files + directories) an archive may hold.
    pub max_entries: u64,
    /// Most bytes all files together may expand to.
    pub max_total_bytes: u64,
    /// Most bytes one file may expand to.
    pub max_file_bytes: u64,
    /// Largest expansion factor: bytes written / compressed bytes, per zip entry and for the
    /// whole archive against its size on disk.
    pub max_ratio: u64,
    /// Expansion below this many bytes is never called a bomb: tiny or repetitive files
    /// legitimately compress far better than `max_ratio`.
    pub ratio_floor_bytes: u64,
    /// Depth and length limits for entry paths.
    pub paths: PathLimits,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_entries: 10_000,
            max_total_bytes: 512 * 1024 * 1024,
            max_file_bytes: 256 * 1024 * 1024,
            max_ratio: 100,
            ratio_floor_bytes: 1024 * 1024,
            paths: PathLimits::default(),
        }
    }
}

/// Why an archive was rejected. Entry names are shown `{:?}`-escaped because they are
/// attacker-controlled and may contain control characters.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "not a recognised archive (first bytes: {magic}); package archives must be zip, tar or \
         tar.gz (the format is detected from the content, not the file name)"
    )]
    UnknownFormat { magic: String },
    #[error(
        "archive is {format}, which is not supported; repack the package as zip, tar or tar.gz"
    )]
    UnsupportedFormat { format: &'static str },
    #[error("{format} archive is corrupt or truncated: {reason}")]
    Corrupt {
        format: &'static str,
        reason: String,
    },
    #[error("entry {entry:?} has an unsafe path: it {reason}")]
    UnsafePath { entry: String, reason: String },
    #[error(
        "entry {entry:?} is a {kind} (to {target:?}); package archives may not contain links, \
         replace it with a copy of the file"
    )]
    Link {
        entry: String,
        kind: &'static str,
        target: String,
    },
    #[error(
        "entry {entry:?} is a {kind}; package archives may contain only regular files and \
         directories"
    )]
    SpecialFile { entry: String, kind: &'static str },
    #[error(
        "entry {entry:?} appears more than once in the archive (after normalising its path); \
         a later copy could silently replace an earlier one, so rebuild the archive without \
         duplicates"
    )]
    Duplicate { entry: String },
    #[error("entry {entry:?} is encrypted; package archives must not be encrypted")]
    Encrypted { entry: String },
    #[error("archive has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("entry {entry:?} expands to more than the per-file limit of {limit} bytes")]
    FileTooLarge { entry: String, limit: u64 },
    #[error("archive expands to more than the total limit of {limit} bytes")]
    TotalTooLarge { limit: u64 },
    #[error(
        "entry {entry:?} expands to more than {limit} times its compressed size; this looks \
         like a decompression bomb"
    )]
    RatioExceeded { entry: String, limit: u64 },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What an extraction produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted {
    pub format: ArchiveFormat,
    pub entries: u64,
    pub bytes: u64,
}

/// Extracts `archive` into `dest`, which must be an existing, empty directory the caller owns
/// (a temp dir). On error `dest` may hold part of the archive; the caller deletes it. Nothing
/// is ever written outside `dest`.
pub fn extract(
    archive: &Path,
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<Extracted, ArchiveError> {
    let format = detect_format(archive)?;
    let archive_len = std::fs::metadata(archive)
        .map_err(|source| ArchiveError::Io {
            path: archive.to_path_buf(),
            source,
        })?
        .len();
    let mut sink = sink::Sink::new(dest, limits, archive_len);
    match format {
        ArchiveFormat::Zip => from_zip::extract(archive, &mut sink)?,
        ArchiveFormat::Tar => from_tar::extract(archive, false, &mut sink)?,
        ArchiveFormat::TarGz => from_tar::extract(archive, true, &mut sink)?,
    }
    Ok(Extracted {
        format,
        entries: sink.entries(),
        bytes: sink.total_bytes(),
    })
}

/// Names of top-level entries that archivers add and that are never the package (macOS Finder
/// zips carry `__MACOSX/`).
const IGNORED_TOP_LEVEL: &[&str] = &["__MACOSX"];

/// Finds the directory holding `manifest.json` in an extracted tree: the tree itself, or its
/// single top-level directory (people often archive the package *folder*).
pub fn find_package_root(tree: &Path) -> Option<PathBuf> {
    if tree.join("manifest.json").is_file() {
        return Some(tree.to_path_buf());
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(tree).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name();
        if IGNORED_TOP_LEVEL.iter().any(|n| name == *n) {
            continue;
        }
        dirs.push(entry);
    }
    match dirs.as_slice() {
        [only] if only.file_type().ok()?.is_dir() => {
            let dir = only.path();
            dir.join("manifest.json").is_file().then_some(dir)
        }
        _ => None,
    }
}
