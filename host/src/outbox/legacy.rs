//! The outbox's previous on-disk format, read once on upgrade: one file per entry, named
//! `<seq:020>-<sha256(id)>.entry`, holding a header line `astra-outbox v1 <sha256 of body>`
//! and the JSON entry; `.tmp-*` files are writes that crashed before their rename. The
//! entries found here are migrated into the log (see the parent module) and the files
//! deleted; damaged files are quarantined as `*.corrupt`, as the old format did.

use astra_core::worker::OutboxEntry;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const HEADER_PREFIX: &str = "astra-outbox v1 ";
pub const TMP_PREFIX: &str = ".tmp-";
const ENTRY_SUFFIX: &str = ".entry";
pub const CORRUPT_SUFFIX: &str = ".corrupt";
const SEQ_DIGITS: usize = 20;
const HASH_HEX: usize = 64;

/// What the old format left in a directory.
#[derive(Debug, Default)]
pub struct Found {
    /// Readable entries in write order (a later file for the same id supersedes an earlier).
    pub entries: Vec<OutboxEntry>,
    /// Every file of the old format that the migration deletes once the log holds its
    /// entries (entry files and stale temp files).
    pub files: Vec<PathBuf>,
}

impl Found {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// True for names this module owns (so the caller does not warn about them).
pub fn owns(name: &str) -> bool {
    name.starts_with(TMP_PREFIX) || parse_name(name).is_some()
}

/// Reads the old-format files among `names` (all in `dir`); corrupt ones are quarantined.
pub fn read(dir: &Path, names: &[String]) -> Found {
    let mut found = Found::default();
    // Keyed by (seq, name): hand-copied files could share a sequence number.
    let mut by_seq: BTreeMap<(u64, &str), OutboxEntry> = BTreeMap::new();
    for name in names {
        let path = dir.join(name);
        if name.starts_with(TMP_PREFIX) {
            // A write that crashed before its rename: the entry was never durable.
            found.files.push(path);
            continue;
        }
        let Some((seq, hash)) = parse_name(name) else {
            continue;
        };
        match read_entry(&path, hash) {
            Ok(entry) => {
                by_seq.insert((seq, name), entry);
                found.files.push(path);
            }
            Err(reason) => quarantine(&path, &reason),
        }
    }
    for entry in by_seq.into_values() {
        if let Some(pos) = found.entries.iter().position(|e| e.id == entry.id) {
            tracing::warn!(dir = %dir.display(), "an old-format outbox entry is superseded by a later one with the same id");
            found.entries.remove(pos);
        }
        found.entries.push(entry);
    }
    found
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
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

/// Renames a damaged file or segment to `*.corrupt` (kept for inspection, never replayed).
pub fn quarantine(path: &Path, reason: &str) {
    let mut target = path.as_os_str().to_owned();
    target.push(CORRUPT_SUFFIX);
    match fs::rename(path, &target) {
        Ok(()) => tracing::warn!(
            file = %path.display(), reason, moved_to = %Path::new(&target).display(),
            "quarantined a corrupt outbox file; its frames will not be re-sent"
        ),
        Err(e) => tracing::warn!(
            file = %path.display(), reason, error = %e,
            "cannot quarantine a corrupt outbox file; skipping it"
        ),
    }
}

/// Writes an entry exactly as the old format did (tests of the upgrade path).
#[cfg(test)]
pub fn write_old(dir: &Path, seq: u64, entry: &OutboxEntry) -> PathBuf {
    let name = format!(
        "{seq:0width$}-{}{ENTRY_SUFFIX}",
        id_hash(&entry.id),
        width = SEQ_DIGITS
    );
    let body = serde_json::to_vec(entry).expect("test entry encodes");
    let mut bytes = format!("{HEADER_PREFIX}{}\n", hex::encode(Sha256::digest(&body))).into_bytes();
    bytes.extend_from_slice(&body);
    let path = dir.join(name);
    fs::write(&path, bytes).expect("test dir is writable");
    path
}
