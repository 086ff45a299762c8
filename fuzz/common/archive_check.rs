//! Shared by the `archive_extract` fuzz target and `host/tests/fuzz_corpus_replay.rs`
//! (both include it with `#[path]`): what must hold for any bytes given to the package
//! archive extractor.

#![allow(dead_code)]

use astra_host::packages::{extract, ExtractLimits};
use std::fs;
use std::path::Path;

/// Small limits so hostile inputs hit them quickly.
pub fn limits() -> ExtractLimits {
    ExtractLimits {
        max_entries: 64,
        max_total_bytes: 1 << 20,
        max_file_bytes: 256 << 10,
        ..ExtractLimits::default()
    }
}

/// Extracts `data` into `<tmp>/a/b/c/d/e/out` and checks that nothing exists in `<tmp>` but
/// the archive, the five parent directories and what is under `out`; that no link exists
/// anywhere; and that the limits held on what was written, whether extraction failed or not.
/// Returns whether the archive was accepted.
pub fn check_archive_bytes(data: &[u8]) -> bool {
    let root = tempfile::tempdir().expect("temp dir");
    let mut deep = root.path().to_path_buf();
    let mut parents = Vec::new();
    for d in ["a", "b", "c", "d", "e"] {
        deep.push(d);
        parents.push(deep.clone());
    }
    let dest = deep.join("out");
    fs::create_dir_all(&dest).expect("create dest");
    let archive = root.path().join("package.bin");
    fs::write(&archive, data).expect("write archive");
    let lim = limits();
    let result = extract(&archive, &dest, &lim);

    let mut files = 0u64;
    let mut bytes = 0u64;
    let mut entries = 0u64;
    walk(root.path(), &mut |p, md| {
        assert!(
            !md.file_type().is_symlink(),
            "extraction left a link at {}",
            p.display()
        );
        let allowed = p == archive || parents.iter().any(|q| q == p) || p.starts_with(&dest);
        assert!(
            allowed,
            "extraction wrote outside its destination: {}",
            p.display()
        );
        if p.starts_with(&dest) && p != dest {
            entries += 1;
            if md.is_file() {
                files += 1;
                bytes += md.len();
                assert!(md.len() <= lim.max_file_bytes, "per-file limit exceeded");
            }
        }
    });
    assert!(
        bytes <= lim.max_total_bytes,
        "total limit exceeded: {bytes}"
    );
    assert!(
        entries <= lim.max_entries * 2 + 8,
        "entry limit exceeded: {entries}"
    );
    match result {
        Ok(x) => {
            assert!(x.entries <= lim.max_entries);
            assert_eq!(x.bytes, bytes, "reported bytes differ from bytes on disk");
            let _ = files;
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let md = fs::symlink_metadata(&p).expect("stat");
        f(&p, &md);
        if md.is_dir() {
            walk(&p, f);
        }
    }
}
