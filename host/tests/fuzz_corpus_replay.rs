//! Replays the committed fuzz corpora of `manifest_parse` and `archive_extract`
//! (`fuzz/corpus/<target>/`) through the same checks the fuzz targets run (shared source in
//! `fuzz/common/`), on stable and in the normal `cargo test`.

#[path = "../../fuzz/common/archive_check.rs"]
mod archive_check;
#[path = "../../fuzz/common/manifest_check.rs"]
mod manifest_check;

use std::path::{Path, PathBuf};

fn files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "corpus {} is empty", dir.display());
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn manifest_corpus_replays() {
    let mut accepted = Vec::new();
    for p in files("manifest_parse") {
        if manifest_check::check_manifest_bytes(&std::fs::read(&p).unwrap()) {
            accepted.push(name(&p));
        }
    }
    // the seeds are real manifests: the check is not vacuous
    for seed in ["seed-example.json", "seed-bom.json", "seed-two-nodes.json"] {
        assert!(
            accepted.iter().any(|a| a == seed),
            "{seed} rejected; accepted: {accepted:?}"
        );
    }
}

#[test]
fn archive_corpus_replays() {
    let mut accepted = Vec::new();
    for p in files("archive_extract") {
        if archive_check::check_archive_bytes(&std::fs::read(&p).unwrap()) {
            accepted.push(name(&p));
        }
    }
    for good in ["seed-pkg.zip", "seed-pkg.tar", "seed-pkg.tar.gz"] {
        assert!(
            accepted.iter().any(|a| a == good),
            "{good} rejected; accepted: {accepted:?}"
        );
    }
    for hostile in [
        "seed-dotdot.tar",
        "seed-abs.zip",
        "seed-symlink.tar",
        "seed-hardlink.tar",
        "seed-dup.zip",
        "seed-bomb.zip",
    ] {
        assert!(
            !accepted.iter().any(|a| a == hostile),
            "{hostile} was accepted"
        );
    }
}
