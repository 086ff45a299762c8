//! Replays the committed fuzz corpora of `frame_decode`, `decode_differential` and `worker_machine`
//! (`fuzz/corpus/<target>/`) through the same checks the fuzz targets run, on stable and in
//! the normal `cargo test`, so every past finding stays a regression test. Also keeps the
//! `worker_machine` seeds in step with the scenarios they encode.

mod common;

use common::worker_ops::{encode_input, run_bytes, seed_scenarios};
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn files(target: &str) -> Vec<PathBuf> {
    let dir = corpus(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "corpus {} is empty", dir.display());
    v
}

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let all = files(target);
    for p in &all {
        let data = std::fs::read(p).unwrap();
        let r = std::panic::catch_unwind(|| check(&data));
        if r.is_err() {
            panic!(
                "{target}: {} fails its check (see the panic above)",
                p.display()
            );
        }
    }
    all.len()
}

#[test]
fn frame_decode_corpus_replays() {
    let n = replay("frame_decode", common::frame_check::check_frame_bytes);
    assert!(n >= 10, "only {n} inputs");
}

#[test]
fn decode_differential_corpus_replays() {
    let n = replay(
        "decode_differential",
        common::differential_check::check_decoders_agree,
    );
    assert!(n >= 10, "only {n} inputs");
}

#[test]
fn worker_machine_corpus_replays() {
    let n = replay("worker_machine", run_bytes);
    assert!(n >= 7, "only {n} inputs");
}

/// The committed seeds are exactly the encoded scenarios. `ASTRA_WRITE_SEEDS=1` rewrites them.
#[test]
fn worker_machine_seeds_match_the_scenarios() {
    let dir = corpus("worker_machine");
    for (name, setup, ops) in seed_scenarios() {
        let path = dir.join(format!("seed-{name}"));
        let bytes = encode_input(&setup, &ops);
        if std::env::var_os("ASTRA_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let on_disk = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with ASTRA_WRITE_SEEDS=1)", path.display()));
        assert_eq!(
            on_disk,
            bytes,
            "{} is stale (run with ASTRA_WRITE_SEEDS=1)",
            path.display()
        );
    }
}
