//! Fuzzes package archive extraction (zip, tar, tar.gz detected from content) into a temp
//! directory nested five levels deep: it must never panic, never create anything outside the
//! destination (checked over the whole temp root), and never leave a link behind.
#![no_main]

#[path = "../common/archive_check.rs"]
mod archive_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    archive_check::check_archive_bytes(data);
});
