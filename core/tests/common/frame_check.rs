//! Shared by `fuzz_corpus_replay.rs` and the `frame_decode` fuzz target (included there with
//! `#[path]`): what must hold for any bytes given to the strict decoder.

#![allow(dead_code)]

use astra_core::v1::codec::{
    decode, encode, payload_map, tolerate_non_finite, Body, DecodeErrorKind,
    DEFAULT_MAX_FRAME_BYTES,
};
use serde_json::{Map, Value};

fn payload_of(body: &Body) -> Option<Map<String, Value>> {
    Some(match body {
        Body::Handshake(p) => payload_map(p),
        Body::Register(p) => payload_map(p),
        Body::Heartbeat(p) => payload_map(p),
        Body::Ack(p) => payload_map(p),
        Body::Dispatch(p) => payload_map(p),
        Body::Result(p) => payload_map(p),
        Body::Feedback(p) => payload_map(p),
        Body::CommandError(p) => payload_map(p),
        Body::PkgEvent(p) => payload_map(p),
        Body::PkgInstall(p) => payload_map(p),
        Body::PkgUninstall(p) => payload_map(p),
        Body::Unknown(_) => return None,
    })
}

/// Decodes `data` (as lossy UTF-8, as a driver hands text frames over) under two size limits.
/// Panics if the decoder panics, if an error names an empty field, or if an accepted frame
/// does not re-encode into an accepted frame with the same envelope and type.
pub fn check_frame_bytes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = tolerate_non_finite(&text);
    for max in [DEFAULT_MAX_FRAME_BYTES, 64] {
        match decode(&text, max) {
            Ok(d) => {
                let mut env = d.env.clone();
                if let Some(p) = payload_of(&d.body) {
                    env.payload = p;
                }
                let again = encode(&env);
                let d2 = decode(&again, DEFAULT_MAX_FRAME_BYTES).unwrap_or_else(|e| {
                    panic!("accepted frame re-encodes into a rejected one: {e}\n{text}\n{again}")
                });
                assert_eq!(d2.env, d.env, "envelope changed across re-encoding");
                assert_eq!(d2.body.frame_type(), d.body.frame_type());
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.is_empty());
                if matches!(
                    e.kind,
                    DecodeErrorKind::Envelope { .. } | DecodeErrorKind::Payload { .. }
                ) {
                    assert!(e.field().is_some_and(|f| !f.is_empty()), "{msg}");
                }
            }
        }
    }
}
