//! Reads a zip archive entry by entry into the [`Sink`].

use super::sink::Sink;
use super::ArchiveError;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use zip::result::ZipError;
use zip::ZipArchive;

const FORMAT: &str = "zip";

fn corrupt(e: ZipError) -> ArchiveError {
    ArchiveError::Corrupt {
        format: FORMAT,
        reason: e.to_string(),
    }
}

/// What the unix mode bits (when the zip was made on unix) say an entry is.
enum Shape {
    File { executable: bool },
    Dir,
    Symlink,
    Special(&'static str),
}

fn shape(name: &str, mode: Option<u32>) -> Shape {
    const S_IFMT: u32 = 0o170_000;
    let fmt = mode.map(|m| m & S_IFMT);
    match fmt {
        Some(0o120_000) => Shape::Symlink,
        Some(0o020_000) => Shape::Special("character device"),
        Some(0o060_000) => Shape::Special("block device"),
        Some(0o010_000) => Shape::Special("FIFO"),
        Some(0o140_000) => Shape::Special("socket"),
        Some(0o040_000) => Shape::Dir,
        _ if name.ends_with('/') => Shape::Dir,
        _ => Shape::File {
            executable: mode.is_some_and(|m| m & 0o111 != 0),
        },
    }
}

pub(super) fn extract(archive: &Path, sink: &mut Sink<'_>) -> Result<(), ArchiveError> {
    let file = File::open(archive).map_err(|source| ArchiveError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    let mut zip = ZipArchive::new(file).map_err(corrupt)?;
    for i in 0..zip.len() {
        sink.count_entry()?;
        // Inspect the metadata without decompressing anything.
        let (name, encrypted, mode, compressed) = {
            let raw = zip.by_index_raw(i).map_err(corrupt)?;
            (
                raw.name().to_string(),
                raw.encrypted(),
                raw.unix_mode(),
                raw.compressed_size(),
            )
        };
        if encrypted {
            return Err(ArchiveError::Encrypted { entry: name });
        }
        match shape(&name, mode) {
            Shape::Dir => sink.dir(&name)?,
            Shape::Special(kind) => return Err(ArchiveError::SpecialFile { entry: name, kind }),
            Shape::Symlink => {
                // The link target is the entry's content; read a little of it for the message.
                let mut target = String::new();
                if let Ok(entry) = zip.by_index(i) {
                    let _ = entry.take(4096).read_to_string(&mut target);
                }
                return Err(ArchiveError::Link {
                    entry: name,
                    kind: "symlink",
                    target,
                });
            }
            Shape::File { executable } => {
                let mut entry = zip.by_index(i).map_err(corrupt)?;
                sink.file(&name, &mut entry, Some(compressed), executable, FORMAT)?;
            }
        }
    }
    Ok(())
}
