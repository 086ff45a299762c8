//! Reads a tar or tar.gz archive entry by entry into the [`Sink`].

use super::sink::{read_error, CappedReader, Sink};
use super::ArchiveError;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use tar::EntryType;

/// Header overhead allowed per entry on top of file data when capping the raw tar stream
/// (a header block, a long-name block and padding).
const PER_ENTRY_OVERHEAD: u64 = 4 * 512;
/// Extra room for pax headers and the end-of-archive blocks.
const STREAM_SLACK: u64 = 1024 * 1024;

pub(super) fn extract(archive: &Path, gzip: bool, sink: &mut Sink<'_>) -> Result<(), ArchiveError> {
    let format = if gzip { "tar.gz" } else { "tar" };
    let file = File::open(archive).map_err(|source| ArchiveError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    let file = BufReader::new(file);
    let raw: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    // The tar crate buffers GNU long names and pax headers in memory; capping the decoded
    // stream at "everything the limits allow plus headers" bounds that memory as well.
    let limits = *sink.limits();
    let cap = limits
        .max_total_bytes
        .saturating_add(limits.max_entries.saturating_mul(PER_ENTRY_OVERHEAD))
        .saturating_add(STREAM_SLACK);
    let mut tar = tar::Archive::new(CappedReader::new(raw, cap));
    let entries = tar.entries().map_err(|e| read_error(format, e, &limits))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_error(format, e, &limits))?;
        sink.count_entry()?;
        let name = String::from_utf8(entry.path_bytes().into_owned()).map_err(|_| {
            ArchiveError::UnsafePath {
                entry: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                reason: "is not valid UTF-8".into(),
            }
        })?;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
                sink.file(&name, &mut entry, None, executable, format)?;
            }
            EntryType::Directory => sink.dir(&name)?,
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let kind = if kind == EntryType::Symlink {
                    "symlink"
                } else {
                    "hardlink"
                };
                return Err(ArchiveError::Link {
                    entry: name,
                    kind,
                    target,
                });
            }
            EntryType::Char => return Err(special(name, "character device")),
            EntryType::Block => return Err(special(name, "block device")),
            EntryType::Fifo => return Err(special(name, "FIFO")),
            // Global pax headers only carry defaults for later entries; nothing to write.
            EntryType::XGlobalHeader => {}
            EntryType::GNUSparse => return Err(special(name, "sparse file")),
            _ => return Err(special(name, "tar entry of an unsupported type")),
        }
    }
    Ok(())
}

fn special(entry: String, kind: &'static str) -> ArchiveError {
    ArchiveError::SpecialFile { entry, kind }
}
