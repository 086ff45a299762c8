//! Fuzzes the strict v1 frame decoder with arbitrary bytes: it must never panic, and every
//! frame it accepts must re-encode into a frame it accepts again with the same envelope.
#![no_main]

#[path = "../../core/tests/common/frame_check.rs"]
mod frame_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| frame_check::check_frame_bytes(data));
