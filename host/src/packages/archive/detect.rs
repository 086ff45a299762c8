//! Recognises an archive by its first bytes (magic numbers), never by its file name: the
//! Python worker trusted the extension and so could never unpack its own `package.cwx`
//! downloads (spec §7.5, §12.3 Python bug 9).

use super::ArchiveError;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The archive formats a package may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Zip,
    Tar,
    TarGz,
}

impl ArchiveFormat {
    pub fn name(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => "zip",
            ArchiveFormat::Tar => "tar",
            ArchiveFormat::TarGz => "tar.gz",
        }
    }
}

impl std::fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const TAR_BLOCK: usize = 512;

/// Reads until `buf` is full or the stream ends; returns how much was read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A tar header block: the POSIX/GNU `ustar` magic, or (for pre-POSIX v7 archives) a valid
/// header checksum over a block that is not all zeros.
pub(super) fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < TAR_BLOCK {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| ('0'..='7').contains(c))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

/// Formats we recognise but do not unpack, so the error can say what the file is.
fn known_unsupported(head: &[u8]) -> Option<&'static str> {
    const TABLE: &[(&[u8], &str)] = &[
        (b"BZh", "bzip2"),
        (b"\xFD7zXZ\x00", "xz"),
        (b"\x28\xB5\x2F\xFD", "zstd"),
        (b"7z\xBC\xAF\x27\x1C", "7z"),
        (b"Rar!", "rar"),
    ];
    TABLE
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, name)| *name)
}

/// Detects the format of the archive at `path` from its content.
pub fn detect_format(path: &Path) -> Result<ArchiveFormat, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut head = [0u8; TAR_BLOCK];
    let n = read_up_to(&mut file, &mut head).map_err(io_err)?;
    let head = &head[..n];

    if head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(b"PK\x07\x08")
    {
        return Ok(ArchiveFormat::Zip);
    }
    if head.starts_with(b"\x1F\x8B") {
        // gzip says nothing about what it wraps; look at the first decompressed block.
        let file = File::open(path).map_err(io_err)?;
        let mut inner = [0u8; TAR_BLOCK];
        let k = read_up_to(&mut MultiGzDecoder::new(file), &mut inner).map_err(|e| {
            ArchiveError::Corrupt {
                format: "gzip",
                reason: e.to_string(),
            }
        })?;
        if looks_like_tar(&inner[..k]) {
            return Ok(ArchiveFormat::TarGz);
        }
        return Err(ArchiveError::UnsupportedFormat {
            format: "gzip data that is not a tar archive",
        });
    }
    if let Some(format) = known_unsupported(head) {
        return Err(ArchiveError::UnsupportedFormat { format });
    }
    if looks_like_tar(head) {
        return Ok(ArchiveFormat::Tar);
    }
    Err(ArchiveError::UnknownFormat {
        magic: hex::encode(&head[..head.len().min(8)]),
    })
}
