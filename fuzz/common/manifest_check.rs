//! Shared by the `manifest_parse` fuzz target and `host/tests/fuzz_corpus_replay.rs`: what
//! must hold for any bytes given to the `manifest.json` parser.

#![allow(dead_code)]

use astra_host::packages::Manifest;

/// Never panics; an accepted manifest serialises into one that parses to the same value.
/// Returns whether the input was accepted.
pub fn check_manifest_bytes(data: &[u8]) -> bool {
    match Manifest::parse(data) {
        Ok(m) => {
            let again = serde_json::to_vec(&m).expect("a parsed manifest serialises");
            let m2 = Manifest::parse(&again)
                .unwrap_or_else(|e| panic!("a serialised manifest no longer parses: {e}"));
            assert_eq!(
                m, m2,
                "manifest changed across a serialise/parse round trip"
            );
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}
