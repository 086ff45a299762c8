//! Shared by `fuzz_corpus_replay.rs` and the `decode_differential` fuzz target (included there
//! with `#[path]`): for any bytes, `codec::decode` (hand-written fast path first) answers
//! exactly as `codec::decode_serde` — the same frame, or the same error kind, field, reason
//! and recovered ids — and whatever `codec::decode_light` reads is the frame `decode` reads.
//! This is what the `fast_path_agrees_with_serde_*` and `light_*` proptests compare.

#![allow(dead_code)]

use astra_core::v1::codec::{
    decode, decode_light, decode_serde, Body, Light, DEFAULT_MAX_FRAME_BYTES,
};

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
        check_light_agrees(&text, max);
    }
}

/// If `decode_light(text, max)` reads a frame, `decode(text, max)` accepts `text` as exactly
/// that frame: an ack with that `ack.for`, or a heartbeat that requests no ack. Panics if not.
pub fn check_light_agrees(text: &str, max: usize) {
    let Some(light) = decode_light(text, max) else {
        return;
    };
    let f = decode(text, max).unwrap_or_else(|e| {
        panic!(
            "decode_light read {light:?} from a frame decode rejects (limit {max}): {e}; {text:?}"
        )
    });
    let same = match light {
        Light::Ack { for_id } => matches!(f.body, Body::Ack(_)) && f.env.ack_for() == Some(for_id),
        Light::Heartbeat => matches!(f.body, Body::Heartbeat(_)) && !f.env.ack_requested(),
    };
    assert!(
        same,
        "decode_light read {light:?}, decode read {f:?}; {text:?}"
    );
}
