//! Shared by `fuzz_corpus_replay.rs` and the `decode_differential` fuzz target (included there
//! with `#[path]`): for any bytes, `codec::decode` (hand-written fast path first) answers
//! exactly as `codec::decode_serde` — the same frame, or the same error kind, field, reason
//! and recovered ids. This is what the `fast_path_agrees_with_serde_*` proptests compare.

#![allow(dead_code)]

use astra_core::v1::codec::{decode, decode_serde, DEFAULT_MAX_FRAME_BYTES};

/// Decodes `data` (as lossy UTF-8, as a driver hands text frames over) through both decoders
/// under the default limit, a limit of exactly the text's length (the fast path's boundary)
/// and one byte less (serde's `TooLarge`). Panics if the two answers differ.
pub fn check_decoders_agree(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let limits = [
        DEFAULT_MAX_FRAME_BYTES,
        text.len(),
        text.len().saturating_sub(1),
    ];
    for max in limits {
        let fast_first = decode(&text, max);
        let serde_only = decode_serde(&text, max);
        assert_eq!(
            fast_first, serde_only,
            "decode and decode_serde disagree (limit {max}) on {text:?}"
        );
    }
}
