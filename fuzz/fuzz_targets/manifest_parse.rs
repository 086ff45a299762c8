//! Fuzzes `manifest.json` parsing: never panics; an accepted manifest serialises into one
//! that parses again to the same value.
#![no_main]

#[path = "../common/manifest_check.rs"]
mod manifest_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    manifest_check::check_manifest_bytes(data);
});
