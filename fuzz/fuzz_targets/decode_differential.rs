//! Differential fuzzing of the hand-written fast-path decoder: for arbitrary bytes,
//! `codec::decode` (fast path first, serde when unsure) must answer exactly as
//! `codec::decode_serde` alone — the same frame, or the same error and recovered ids.
#![no_main]

#[path = "../../core/tests/common/differential_check.rs"]
mod differential_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| differential_check::check_decoders_agree(data));
