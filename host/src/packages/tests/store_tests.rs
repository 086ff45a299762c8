//! Discovery: every layout of spec §7.4, broken packages, hidden and stale directories.

use super::fixtures::{bytes, example_manifest, package_files, write_tree};
use crate::packages::{PackageStore, Runtime};
use astra_core::v1::payloads::{PackageEntry, PackageStatus};
use astra_core::work::inventory::HandlerKey;
use serde_json::json;
use std::fs;

fn entry(name: &str, version: &str, status: PackageStatus) -> PackageEntry {
    PackageEntry {
        name: name.into(),
        version: version.into(),
        status,
    }
}

#[test]
fn discovers_all_layouts_and_reports_broken_packages() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    // Our layout.
    write_tree(
        &root.join("example.pkg/1.0.0"),
        &package_files("example.pkg", "1.0.0", "v1"),
    );
    // Legacy nested layout with unrelated directory names (like example_pkg/1.0.0).
    write_tree(
        &root.join("example_pkg/2.0.0"),
        &package_files("example.pkg", "2.0.0", "v2"),
    );
    // Legacy flat layout.
    write_tree(
        &root.join("flatpkg"),
        &package_files("flat.pkg", "0.1.0", "flat"),
    );
    // Broken: not JSON at all -> identity from the directory names.
    fs::create_dir_all(root.join("broken/9.9.9")).unwrap();
    fs::write(root.join("broken/9.9.9/manifest.json"), b"{ not json").unwrap();
    // Broken: readable identity but invalid (node names a missing adapter).
    let mut bad = example_manifest("bad.pkg", "3.0.0");
    bad["nodes"][0]["adapter"] = json!("ghost");
    fs::create_dir_all(root.join("whatever/dir")).unwrap();
    fs::write(root.join("whatever/dir/manifest.json"), bytes(&bad)).unwrap();
    // Not packages: a directory without manifest, a file, a hidden directory.
    fs::create_dir_all(root.join("empty/sub")).unwrap();
    fs::write(root.join("README"), b"hi").unwrap();
    write_tree(
        &root.join(".git/x"),
        &package_files("hidden.pkg", "1.0.0", "h"),
    );

    let store = PackageStore::open(root).unwrap();
    let list = store.list();
    assert_eq!(list.len(), 5, "{list:#?}");

    let broken = list
        .iter()
        .find(|p| p.dir.ends_with("broken/9.9.9"))
        .unwrap();
    assert_eq!(
        (broken.name.as_str(), broken.version.as_str()),
        ("broken", "9.9.9")
    );
    assert_eq!(broken.status, PackageStatus::Failed);
    assert!(broken.error.as_deref().unwrap().contains("not valid JSON"));
    assert!(broken.manifest.is_none() && broken.handlers.is_empty());

    let bad = list.iter().find(|p| p.name == "bad.pkg").unwrap();
    assert_eq!(bad.status, PackageStatus::Failed);
    assert!(
        bad.error.as_deref().unwrap().contains("nodes[0].adapter"),
        "{:?}",
        bad.error
    );

    assert_eq!(
        store.inventory_entries(),
        vec![
            entry("bad.pkg", "3.0.0", PackageStatus::Failed),
            entry("broken", "9.9.9", PackageStatus::Failed),
            entry("example.pkg", "1.0.0", PackageStatus::Installed),
            entry("example.pkg", "2.0.0", PackageStatus::Installed),
            entry("flat.pkg", "0.1.0", PackageStatus::Installed),
        ]
    );

    let inv = store.inventory();
    assert!(inv.has_handler(&HandlerKey::new(
        "example.pkg",
        "2.0.0",
        "example.pkg.feedback_demo"
    )));
    assert!(inv.has_handler(&HandlerKey::new("flat.pkg", "0.1.0", "example.pkg.echo")));
    assert!(!inv.handlers.iter().any(|k| k.package == "bad.pkg"));
    assert_eq!(inv.handlers.len(), 21);

    let key = HandlerKey::new("example.pkg", "2.0.0", "example.pkg.delay");
    let (pkg, spec) = store.resolve(&key).unwrap();
    assert!(pkg.dir.ends_with("example_pkg/2.0.0"));
    assert_eq!(spec.entrypoint.to_string(), "adapters.demo:delay");
    assert!(store
        .resolve(&HandlerKey::new(
            "example.pkg",
            "3.0.0",
            "example.pkg.delay"
        ))
        .is_none());
}

#[test]
fn open_creates_the_directory_and_removes_stale_staging() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("pkgs");
    let store = PackageStore::open(&root).unwrap();
    assert!(store.list().is_empty());
    let stale = root.join(".astra-staging-crashed");
    write_tree(
        &stale.join("tree"),
        &package_files("example.pkg", "1.0.0", "x"),
    );
    assert!(PackageStore::open(&root).unwrap().list().is_empty());
    assert!(!stale.exists());
}

#[test]
fn process_runtime_command_must_exist_inside_the_package() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("proc.pkg/1.0.0");
    let mut m = example_manifest("proc.pkg", "1.0.0");
    m["adapters"][0]["metadata"] = json!({"runtime": "process", "command": "bin/echo"});
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("manifest.json"), bytes(&m)).unwrap();
    let store = PackageStore::open(t.path()).unwrap();
    let p = &store.list()[0];
    assert_eq!(p.status, PackageStatus::Failed);
    assert!(
        p.error.as_deref().unwrap().contains("bin/echo"),
        "{:?}",
        p.error
    );

    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::write(dir.join("bin/echo"), b"#!/bin/sh\n").unwrap();
    let p = &store.list()[0];
    assert_eq!(p.status, PackageStatus::Installed, "{:?}", p.error);
    let rt = &p.handlers[0].runtime;
    assert!(matches!(rt, Runtime::Process { .. }));
    assert_eq!(p.command_path(rt).unwrap(), dir.join("bin/echo"));

    // A link that leads out of the package is refused even though the file exists.
    #[cfg(unix)]
    {
        let outside = t.path().join("outside-echo");
        fs::write(&outside, b"#!/bin/sh\n").unwrap();
        fs::remove_file(dir.join("bin/echo")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("bin/echo")).unwrap();
        assert_eq!(store.list()[0].status, PackageStatus::Failed);
    }
}
