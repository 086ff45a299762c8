//! The outbox log's on-disk framing, pure (no I/O): a segment header, then records of
//! `len: u32 LE | crc32(body): u32 LE | body`, where `body` is a kind byte and its payload.
//! The rest of a segment is zeros (it is preallocated), so a zero length word followed only
//! by zeros is the clean end; anything else that does not decode is a torn or damaged tail.
//!
//! The bytes come from disk and may be hostile: decoding never panics and never trusts a
//! length beyond the bytes at hand.

use astra_core::worker::OutboxEntry;

/// `astra-outbox-log` and the format version, little endian.
pub const MAGIC: &[u8; 16] = b"astra-outbox-log";
pub const VERSION: u32 = 1;
pub const SEGMENT_HEADER: usize = 24;
pub const RECORD_HEADER: usize = 8;
/// Larger records are refused on write and treated as damage on read (the largest frame
/// the worker sends is a few times `max_frame_bytes`, far below this).
pub const MAX_BODY: usize = 1 << 30;

const PUT: u8 = 1;
const ACK: u8 = 2;
const CHECKPOINT: u8 = 3;

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An entry to keep until acked (a later put of the same id replaces it in place).
    Put(OutboxEntry),
    /// The entry with this id was acked.
    Ack(String),
    /// Every put of this segment before this record is the complete live set: whatever
    /// earlier segments say is superseded (written at the start of a compacted segment).
    Checkpoint,
}

pub fn segment_header() -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..16].copy_from_slice(MAGIC);
    h[16..20].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// `Err` says why `bytes` do not start with a segment header this version can read.
pub fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < SEGMENT_HEADER {
        return Err(format!(
            "shorter ({} bytes) than a segment header",
            bytes.len()
        ));
    }
    if &bytes[..16] != MAGIC {
        return Err("not an outbox log segment (bad magic)".into());
    }
    let version = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    if version != VERSION {
        return Err(format!(
            "segment format version {version}, this worker reads {VERSION}"
        ));
    }
    Ok(())
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER + 1 + payload.len());
    let len = u32::try_from(1 + payload.len()).unwrap_or(u32::MAX);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

/// The framed bytes of a put; `Err` when the entry cannot be encoded or is too large.
pub fn put(entry: &OutboxEntry) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
    if json.len() + 1 > MAX_BODY {
        return Err(format!(
            "entry of {} bytes exceeds the outbox record limit of {MAX_BODY} bytes",
            json.len()
        ));
    }
    Ok(frame(PUT, &json))
}

pub fn ack(id: &str) -> Vec<u8> {
    // Ids come from our own frames' envelopes; a huge one is cut to the limit, which can
    // only make the ack fail to match (a re-send), never corrupt the log.
    let bytes = &id.as_bytes()[..id.len().min(MAX_BODY - 1)];
    frame(ACK, bytes)
}

pub fn checkpoint() -> Vec<u8> {
    frame(CHECKPOINT, &[])
}

/// A decoded record and where its framed bytes are in the segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub offset: usize,
    pub len: usize,
    pub record: Record,
}

/// What a scan of one segment found.
#[derive(Debug, Default)]
pub struct Scan {
    pub records: Vec<Located>,
    /// Where the next record goes: the end of the last good record.
    pub end: usize,
    /// Set when the segment has bytes past `end` that are not a clean zero tail: the offset
    /// of the first bad record and why it is bad.
    pub cut: Option<(usize, String)>,
}

/// Decodes the records of a segment whose header was checked. Stops at the clean end or at
/// the first bad record (see [`Scan::cut`]).
pub fn scan(bytes: &[u8]) -> Scan {
    let mut s = Scan {
        end: SEGMENT_HEADER.min(bytes.len()),
        ..Scan::default()
    };
    let mut off = s.end;
    loop {
        let rest = &bytes[off..];
        if rest.iter().all(|&b| b == 0) {
            return s;
        }
        match decode_one(rest) {
            Ok((len, record)) => {
                s.records.push(Located {
                    offset: off,
                    len,
                    record,
                });
                off += len;
                s.end = off;
            }
            Err(reason) => {
                s.cut = Some((off, reason));
                return s;
            }
        }
    }
}

/// One record at the start of `rest` (which is not all zeros): its framed length and value.
fn decode_one(rest: &[u8]) -> Result<(usize, Record), String> {
    if rest.len() < RECORD_HEADER {
        return Err(format!("truncated record header ({} bytes)", rest.len()));
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 {
        return Err("zero-length record followed by data".into());
    }
    if len > MAX_BODY {
        return Err(format!("record length {len} exceeds the limit"));
    }
    let Some(body) = rest.get(RECORD_HEADER..RECORD_HEADER + len) else {
        return Err(format!(
            "record of {len} bytes runs past the end of the file (torn write)"
        ));
    };
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch (torn or damaged write)".into());
    }
    let (kind, payload) = (body[0], &body[1..]);
    let record = match kind {
        PUT => {
            Record::Put(serde_json::from_slice(payload).map_err(|e| format!("invalid entry: {e}"))?)
        }
        ACK => Record::Ack(
            String::from_utf8(payload.to_vec()).map_err(|_| "ack id is not UTF-8".to_string())?,
        ),
        CHECKPOINT if payload.is_empty() => Record::Checkpoint,
        other => return Err(format!("unknown record kind {other}")),
    };
    Ok((RECORD_HEADER + len, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use astra_core::v1::FrameType;
    use proptest::prelude::*;

    fn entry(id: &str) -> OutboxEntry {
        OutboxEntry {
            id: id.into(),
            kind: FrameType::Result,
            task: None,
            frame: format!("{{\"frame\":\"{id}\"}}"),
        }
    }

    fn segment(records: &[Vec<u8>], zeros: usize) -> Vec<u8> {
        let mut b = segment_header().to_vec();
        for r in records {
            b.extend_from_slice(r);
        }
        b.extend(std::iter::repeat_n(0u8, zeros));
        b
    }

    #[test]
    fn round_trip_and_clean_end() {
        let recs = vec![
            put(&entry("a")).unwrap(),
            ack("a"),
            checkpoint(),
            put(&entry("b")).unwrap(),
        ];
        let bytes = segment(&recs, 100);
        check_header(&bytes).unwrap();
        let s = scan(&bytes);
        assert!(s.cut.is_none());
        assert_eq!(s.end, bytes.len() - 100);
        let got: Vec<_> = s.records.iter().map(|l| l.record.clone()).collect();
        assert_eq!(
            got,
            vec![
                Record::Put(entry("a")),
                Record::Ack("a".into()),
                Record::Checkpoint,
                Record::Put(entry("b"))
            ]
        );
        assert_eq!(s.records[1].offset, SEGMENT_HEADER + recs[0].len());
    }

    #[test]
    fn flipped_byte_cuts_at_that_record() {
        let recs = vec![put(&entry("a")).unwrap(), put(&entry("b")).unwrap()];
        let mut bytes = segment(&recs, 10);
        let second = SEGMENT_HEADER + recs[0].len();
        bytes[second + RECORD_HEADER + 3] ^= 0x40;
        let s = scan(&bytes);
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.end, second);
        let (off, why) = s.cut.unwrap();
        assert_eq!(off, second);
        assert!(why.contains("checksum"), "{why}");
    }

    #[test]
    fn zero_length_word_before_data_is_damage_not_the_end() {
        let recs = vec![put(&entry("a")).unwrap()];
        let mut bytes = segment(&recs, 0);
        bytes[SEGMENT_HEADER..SEGMENT_HEADER + 4].fill(0);
        let s = scan(&bytes);
        assert!(s.records.is_empty());
        assert_eq!(s.cut.unwrap().0, SEGMENT_HEADER);
    }

    #[test]
    fn bad_headers_are_named() {
        assert!(check_header(b"short").unwrap_err().contains("shorter"));
        assert!(check_header(&[7u8; 40]).unwrap_err().contains("magic"));
        let mut h = segment_header();
        h[16] = 9;
        assert!(check_header(&h).unwrap_err().contains("version 9"));
    }

    proptest! {
        /// Hostile bytes after a valid header never panic, and whatever decodes is a prefix
        /// that ends exactly where the cut (if any) starts.
        #[test]
        fn arbitrary_tails_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = segment_header().to_vec();
            bytes.extend_from_slice(&put(&entry("x")).unwrap());
            bytes.extend_from_slice(&tail);
            let s = scan(&bytes);
            prop_assert!(!s.records.is_empty());
            if let Some((off, _)) = &s.cut {
                prop_assert_eq!(*off, s.end);
            }
        }

        /// Cutting a valid log anywhere keeps exactly the records that end at or before the cut.
        #[test]
        fn truncation_keeps_whole_records(n in 1usize..6, at in any::<prop::sample::Index>()) {
            let recs: Vec<Vec<u8>> = (0..n).map(|i| put(&entry(&format!("e{i}"))).unwrap()).collect();
            let bytes = segment(&recs, 0);
            let cut_at = SEGMENT_HEADER + at.index(bytes.len() - SEGMENT_HEADER + 1);
            let s = scan(&bytes[..cut_at]);
            let mut end = SEGMENT_HEADER;
            let mut whole = 0;
            for r in &recs {
                if end + r.len() <= cut_at { end += r.len(); whole += 1; }
            }
            prop_assert_eq!(s.records.len(), whole);
            prop_assert_eq!(s.end, end);
            prop_assert_eq!(s.cut.is_some(), cut_at > end);
        }
    }
}
