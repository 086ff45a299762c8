//! Install and uninstall: sources, formats detected by content, checksums, identity checks,
//! hostile archives (rejected, nothing written anywhere, previous install untouched) and
//! version-precise uninstall.

use super::fixtures::*;
use crate::packages::{
    install, run_op, uninstall, ArchiveError, ExtractLimits, FetchError, InstallError,
    InstallLimits, ManifestError, PackageStore,
};
use astra_core::v1::payloads::PackageStatus;
use astra_core::worker::io::PackageOp;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

pub struct Sandbox {
    _t: tempfile::TempDir,
    pub root: PathBuf,
    pub store: PackageStore,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        fs::create_dir_all(root.join("outside")).unwrap();
        fs::write(root.join("outside/keep.txt"), b"keep").unwrap();
        fs::create_dir_all(root.join("src")).unwrap();
        let store = PackageStore::open(root.join("packages")).unwrap();
        Sandbox { _t: t, root, store }
    }

    /// Writes an archive into `src/` under a misleading name.
    pub fn put(&self, file_name: &str, data: &[u8]) -> PathBuf {
        let p = self.root.join("src").join(file_name);
        fs::write(&p, data).unwrap();
        p
    }

    pub fn echo_py(&self, version: &str) -> String {
        fs::read_to_string(
            self.store
                .root()
                .join("example.pkg")
                .join(version)
                .join("adapters/echo.py"),
        )
        .unwrap()
    }

    /// Installs example.pkg `version` with `marker` in echo.py.
    pub fn install_marked(&self, version: &str, marker: &str) {
        let a = self.put(
            &format!("{version}-{marker}.zip"),
            &zip_of(&package_files("example.pkg", version, marker)),
        );
        install(
            &self.store,
            a.to_str().unwrap(),
            Some(("example.pkg", version)),
            None,
            &InstallLimits::default(),
        )
        .unwrap();
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn installs_zip_tar_and_targz_detected_by_content() {
    let files = package_files("example.pkg", "1.0.0", "fmt");
    let formats: [(&str, Vec<u8>); 3] = [
        ("zip", zip_of(&files)),
        ("tar", tar_of(&files)),
        ("tar.gz", gz(&tar_of(&files))),
    ];
    for (format, data) in formats {
        let sb = Sandbox::new();
        // `.cwx` is what the Python worker named every download (and then failed to unpack).
        let a = sb.put("package.cwx", &data);
        let p = install(
            &sb.store,
            path_str(&a),
            Some(("example.pkg", "1.0.0")),
            None,
            &InstallLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(p.status, PackageStatus::Installed, "{format}");
        assert_eq!(p.dir, sb.store.root().join("example.pkg/1.0.0"));
        assert!(sb.echo_py("1.0.0").contains("# fmt"), "{format}");
        assert_eq!(p.handlers.len(), 7);
        // Nothing but the package itself is left in packages_dir (no staging leftovers).
        let top: Vec<_> = fs::read_dir(sb.store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(top, vec!["example.pkg"], "{format}");
    }
}

#[test]
fn installs_from_file_url_with_top_level_directory_and_checksum() {
    let sb = Sandbox::new();
    let data = gz(&tar_of(&prefixed(
        "example_pkg-1.0.0/",
        &package_files("example.pkg", "1.0.0", "dir"),
    )));
    let a = sb.put("my pkg.bin", &data);
    let url = format!("file://{}", path_str(&a).replace(' ', "%20"));
    let sha = sha256_hex(&data).to_ascii_uppercase();
    let p = install(
        &sb.store,
        &url,
        Some(("example.pkg", "1.0.0")),
        Some(&sha),
        &InstallLimits::default(),
    )
    .unwrap();
    assert_eq!(p.status, PackageStatus::Installed);
    assert!(sb.echo_py("1.0.0").contains("# dir"));
    assert!(sb
        .store
        .root()
        .join("example.pkg/1.0.0/manifest.json")
        .is_file());
}

#[test]
fn reinstall_replaces_only_that_version() {
    let sb = Sandbox::new();
    sb.install_marked("1.0.0", "first");
    sb.install_marked("2.0.0", "other");
    sb.install_marked("1.0.0", "second");
    assert!(sb.echo_py("1.0.0").contains("# second"));
    assert!(sb.echo_py("2.0.0").contains("# other"));
    assert_eq!(sb.store.inventory_entries().len(), 2);
}

#[test]
fn install_replaces_a_legacy_copy_of_the_same_version() {
    let sb = Sandbox::new();
    write_tree(
        &sb.store.root().join("example_pkg/1.0.0"),
        &package_files("example.pkg", "1.0.0", "legacy"),
    );
    sb.install_marked("1.0.0", "new");
    assert!(!sb.store.root().join("example_pkg").exists());
    let list = sb.store.list();
    assert_eq!(list.len(), 1);
    assert!(sb.echo_py("1.0.0").contains("# new"));
}

/// Runs a failing install and checks that the whole sandbox (store, outside dir, sources)
/// is byte-for-byte what it was.
fn assert_rejected(
    sb: &Sandbox,
    source: &str,
    expected: Option<(&str, &str)>,
    sha: Option<&str>,
    limits: &InstallLimits,
) -> InstallError {
    let before = snapshot(&sb.root);
    let err = install(&sb.store, source, expected, sha, limits).expect_err("install must fail");
    assert_eq!(
        snapshot(&sb.root),
        before,
        "install failed with {err} but changed files"
    );
    assert!(!err.to_string().is_empty());
    err
}

#[test]
fn checksum_mismatch_names_both_hashes() {
    let sb = Sandbox::new();
    sb.install_marked("1.0.0", "v1");
    let data = zip_of(&package_files("example.pkg", "1.0.0", "evil"));
    let a = sb.put("p.zip", &data);
    let wrong = "0".repeat(64);
    let err = assert_rejected(
        &sb,
        path_str(&a),
        Some(("example.pkg", "1.0.0")),
        Some(&wrong),
        &InstallLimits::default(),
    );
    let msg = err.to_string();
    assert!(matches!(err, InstallError::ChecksumMismatch { .. }));
    assert!(
        msg.contains(&wrong) && msg.contains(&sha256_hex(&data)),
        "{msg}"
    );
    // A malformed checksum is refused before anything is read.
    let err = assert_rejected(
        &sb,
        path_str(&a),
        None,
        Some("xyz"),
        &InstallLimits::default(),
    );
    assert!(matches!(
        err,
        InstallError::InvalidRequest {
            field: "sha256",
            ..
        }
    ));
    assert!(sb.echo_py("1.0.0").contains("# v1"));
}

#[test]
fn name_and_version_must_match_the_command() {
    let sb = Sandbox::new();
    sb.install_marked("1.0.0", "v1");
    let a = sb.put(
        "p.zip",
        &zip_of(&package_files("example.pkg", "1.0.0", "x")),
    );
    let l = InstallLimits::default();
    let err = assert_rejected(&sb, path_str(&a), Some(("other.pkg", "1.0.0")), None, &l);
    assert!(
        matches!(err, InstallError::Mismatch { field: "name", .. }),
        "{err}"
    );
    let err = assert_rejected(&sb, path_str(&a), Some(("example.pkg", "1.0.1")), None, &l);
    assert!(
        matches!(
            err,
            InstallError::Mismatch {
                field: "version",
                ..
            }
        ),
        "{err}"
    );
    // Hostile identities never reach a path.
    for (n, v) in [
        ("../evil", "1.0.0"),
        ("example.pkg", "../../1.0.0"),
        ("example.pkg", "1.0.0/.."),
    ] {
        let err = assert_rejected(&sb, path_str(&a), Some((n, v)), None, &l);
        assert!(matches!(err, InstallError::InvalidRequest { .. }), "{err}");
    }
    assert!(sb.echo_py("1.0.0").contains("# v1"));
}

#[test]
fn bad_sources_are_clear_errors() {
    let sb = Sandbox::new();
    let l = InstallLimits::default();
    let missing = sb.root.join("src/missing.zip");
    let err = assert_rejected(&sb, path_str(&missing), None, None, &l);
    assert!(
        matches!(err, InstallError::Fetch(FetchError::Open { .. })),
        "{err}"
    );
    let err = assert_rejected(&sb, path_str(&sb.root.join("src")), None, None, &l);
    assert!(
        matches!(err, InstallError::Fetch(FetchError::IsDirectory { .. })),
        "{err}"
    );
    let err = assert_rejected(&sb, "s3://bucket/p.zip", None, None, &l);
    assert!(
        matches!(
            err,
            InstallError::Fetch(FetchError::UnsupportedScheme { .. })
        ),
        "{err}"
    );
    let big = sb.put(
        "big.zip",
        &zip_of(&package_files("example.pkg", "1.0.0", "x")),
    );
    let mut small = InstallLimits::default();
    small.fetch.max_bytes = 100;
    let err = assert_rejected(&sb, path_str(&big), None, None, &small);
    assert!(
        matches!(err, InstallError::Fetch(FetchError::TooLarge { .. })),
        "{err}"
    );
}

/// An archive that must be refused, and how to recognise the refusal.
struct Hostile {
    what: &'static str,
    data: Vec<u8>,
    limits: InstallLimits,
    check: fn(&InstallError) -> bool,
}

fn hostile_archives(sb: &Sandbox) -> Vec<Hostile> {
    let good = package_files("example.pkg", "1.0.0", "evil");
    let manifest = bytes(&example_manifest("example.pkg", "1.0.0"));
    let with = |extra: RawEntry<'_>| -> Vec<u8> {
        let mut entries: Vec<RawEntry<'_>> =
            good.iter().map(|(n, d)| RawEntry::file(n, d)).collect();
        entries.push(extra);
        raw_tar(&entries)
    };
    let abs = sb.root.join("outside/abs.txt");
    let abs = abs.to_str().unwrap();
    let d = InstallLimits::default();
    let unsafe_path =
        |e: &InstallError| matches!(e, InstallError::Archive(ArchiveError::UnsafePath { .. }));
    let link = |e: &InstallError| matches!(e, InstallError::Archive(ArchiveError::Link { .. }));
    let special =
        |e: &InstallError| matches!(e, InstallError::Archive(ArchiveError::SpecialFile { .. }));
    let dup = |e: &InstallError| matches!(e, InstallError::Archive(ArchiveError::Duplicate { .. }));
    let ratio =
        |e: &InstallError| matches!(e, InstallError::Archive(ArchiveError::RatioExceeded { .. }));
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let mut bomb_files = good.clone();
    bomb_files.push(("data/zeros.bin".into(), zeros.clone()));
    let noisy: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut noisy_files = good.clone();
    noisy_files.push(("data/noise.bin".into(), noisy));
    vec![
        Hostile {
            what: "traversal ../x",
            data: with(RawEntry::file("../x", b"pwned")),
            limits: d,
            check: unsafe_path,
        },
        Hostile {
            what: "deep traversal",
            data: with(RawEntry::file("adapters/../../../../outside/x", b"pwned")),
            limits: d,
            check: unsafe_path,
        },
        Hostile {
            what: "absolute path",
            data: with(RawEntry::file(abs, b"pwned")),
            limits: d,
            check: unsafe_path,
        },
        Hostile {
            what: "windows path",
            data: with(RawEntry::file("..\\..\\x", b"pwned")),
            limits: d,
            check: unsafe_path,
        },
        Hostile {
            what: "symlink escaping",
            data: {
                let mut entries = vec![RawEntry {
                    name: "adapters/evil",
                    kind: tar::EntryType::Symlink,
                    data: b"",
                    link: Some("../../../../outside"),
                }];
                entries.push(RawEntry::file("adapters/evil/keep.txt", b"pwned"));
                entries.extend(good.iter().map(|(n, d)| RawEntry::file(n, d)));
                raw_tar(&entries)
            },
            limits: d,
            check: link,
        },
        Hostile {
            what: "zip symlink",
            data: zip_with_symlink(&good, "adapters/evil", "/etc/passwd"),
            limits: d,
            check: link,
        },
        Hostile {
            what: "hardlink",
            data: with(RawEntry {
                name: "adapters/hl",
                kind: tar::EntryType::Link,
                data: b"",
                link: Some("/etc/passwd"),
            }),
            limits: d,
            check: link,
        },
        Hostile {
            what: "device",
            data: with(RawEntry {
                name: "dev",
                kind: tar::EntryType::Char,
                data: b"",
                link: None,
            }),
            limits: d,
            check: special,
        },
        Hostile {
            what: "fifo",
            data: with(RawEntry {
                name: "fifo",
                kind: tar::EntryType::Fifo,
                data: b"",
                link: None,
            }),
            limits: d,
            check: special,
        },
        Hostile {
            what: "duplicate tar entry",
            data: with(RawEntry::file("manifest.json", &manifest)),
            limits: d,
            check: dup,
        },
        Hostile {
            what: "duplicate zip entry after normalising",
            data: {
                let mut f = good.clone();
                f.push(("./adapters//echo.py".into(), b"evil".to_vec()));
                zip_of(&f)
            },
            limits: d,
            check: dup,
        },
        Hostile {
            what: "file and directory with one name",
            data: with(RawEntry::file("manifest.json/x", b"x")),
            limits: d,
            check: dup,
        },
        Hostile {
            what: "zip bomb",
            data: zip_of(&bomb_files),
            limits: d,
            check: ratio,
        },
        Hostile {
            what: "tar.gz bomb",
            data: gz(&tar_of(&bomb_files)),
            limits: d,
            check: ratio,
        },
        Hostile {
            what: "file too large",
            data: zip_of(&noisy_files),
            limits: InstallLimits {
                extract: ExtractLimits {
                    max_file_bytes: 40_000,
                    ..Default::default()
                },
                ..d
            },
            check: |e| matches!(e, InstallError::Archive(ArchiveError::FileTooLarge { .. })),
        },
        Hostile {
            what: "total too large",
            data: tar_of(&noisy_files),
            limits: InstallLimits {
                extract: ExtractLimits {
                    max_total_bytes: 45_000,
                    ..Default::default()
                },
                ..d
            },
            check: |e| matches!(e, InstallError::Archive(ArchiveError::TotalTooLarge { .. })),
        },
        Hostile {
            what: "too many entries",
            data: zip_of(&good),
            limits: InstallLimits {
                extract: ExtractLimits {
                    max_entries: 3,
                    ..Default::default()
                },
                ..d
            },
            check: |e| {
                matches!(
                    e,
                    InstallError::Archive(ArchiveError::TooManyEntries { limit: 3 })
                )
            },
        },
        Hostile {
            what: "missing manifest",
            data: zip_of(&good[1..]),
            limits: d,
            check: |e| matches!(e, InstallError::NoManifest),
        },
        Hostile {
            what: "invalid manifest",
            data: {
                let mut m = example_manifest("example.pkg", "1.0.0");
                m["nodes"][0]["adapter"] = serde_json::json!("ghost");
                let mut f = good.clone();
                f[0].1 = bytes(&m);
                zip_of(&f)
            },
            limits: d,
            check: |e| matches!(e, InstallError::Manifest(ManifestError::Invalid { path, .. }) if path == "nodes[0].adapter"),
        },
        Hostile {
            what: "not an archive",
            data: b"#!/bin/sh\nrm -rf /\n".repeat(40),
            limits: d,
            check: |e| matches!(e, InstallError::Archive(ArchiveError::UnknownFormat { .. })),
        },
        Hostile {
            what: "truncated zip",
            data: zip_of(&good)[..200].to_vec(),
            limits: d,
            check: |e| matches!(e, InstallError::Archive(ArchiveError::Corrupt { .. })),
        },
    ]
}

#[test]
fn hostile_archives_are_rejected_without_side_effects() {
    let sb = Sandbox::new();
    sb.install_marked("1.0.0", "v1");
    for (i, h) in hostile_archives(&sb).into_iter().enumerate() {
        let a = sb.put(&format!("hostile-{i}.cwx"), &h.data);
        let err = assert_rejected(
            &sb,
            path_str(&a),
            Some(("example.pkg", "1.0.0")),
            None,
            &h.limits,
        );
        assert!((h.check)(&err), "{}: unexpected error: {err}", h.what);
        assert!(sb.echo_py("1.0.0").contains("# v1"), "{}", h.what);
    }
    assert!(!sb.root.join("x").exists() && !sb.root.join("outside/x").exists());
    assert_eq!(fs::read(sb.root.join("outside/keep.txt")).unwrap(), b"keep");
}

#[test]
fn legacy_flat_layout_of_the_same_name_is_a_clear_conflict() {
    let sb = Sandbox::new();
    write_tree(
        &sb.store.root().join("example.pkg"),
        &package_files("example.pkg", "0.9.0", "flat"),
    );
    let a = sb.put(
        "p.zip",
        &zip_of(&package_files("example.pkg", "1.0.0", "x")),
    );
    let err = assert_rejected(&sb, path_str(&a), None, None, &InstallLimits::default());
    assert!(matches!(err, InstallError::LegacyConflict { .. }), "{err}");
}

#[test]
fn uninstall_removes_exactly_one_version() {
    let sb = Sandbox::new();
    sb.install_marked("1.0.0", "a");
    sb.install_marked("2.0.0", "b");
    let err = uninstall(&sb.store, "example.pkg", None).unwrap_err();
    assert!(
        matches!(&err, InstallError::AmbiguousVersion { versions, .. } if versions.len() == 2),
        "{err}"
    );

    let removed = uninstall(&sb.store, "example.pkg", Some("1.0.0")).unwrap();
    assert_eq!(removed.version, "1.0.0");
    assert!(!sb.store.root().join("example.pkg/1.0.0").exists());
    assert!(sb.echo_py("2.0.0").contains("# b"));

    let err = uninstall(&sb.store, "example.pkg", Some("1.0.0")).unwrap_err();
    assert!(matches!(err, InstallError::NotInstalled { .. }), "{err}");
    let err = uninstall(&sb.store, "../example.pkg", None).unwrap_err();
    assert!(matches!(err, InstallError::InvalidRequest { .. }), "{err}");

    let removed = uninstall(&sb.store, "example.pkg", None).unwrap();
    assert_eq!(removed.version, "2.0.0");
    assert!(sb.store.list().is_empty());
    // The empty <name> directory goes too; staging directories are cleaned up.
    assert_eq!(fs::read_dir(sb.store.root()).unwrap().count(), 0);
}

#[test]
fn uninstall_handles_legacy_and_broken_packages() {
    let sb = Sandbox::new();
    write_tree(
        &sb.store.root().join("example_pkg/1.0.0"),
        &package_files("example.pkg", "1.0.0", "legacy"),
    );
    fs::create_dir_all(sb.store.root().join("broken.pkg/2.0.0")).unwrap();
    fs::write(sb.store.root().join("broken.pkg/2.0.0/manifest.json"), b"{").unwrap();
    let removed = uninstall(&sb.store, "example.pkg", None).unwrap();
    assert!(removed.dir.ends_with("example_pkg/1.0.0"));
    let removed = uninstall(&sb.store, "broken.pkg", Some("2.0.0")).unwrap();
    assert_eq!(removed.status, PackageStatus::Failed);
    assert_eq!(fs::read_dir(sb.store.root()).unwrap().count(), 0);
}

#[test]
fn run_op_reports_outcomes() {
    let sb = Sandbox::new();
    let a = sb.put(
        "p.cwx",
        &zip_of(&package_files("example.pkg", "1.0.0", "op")),
    );
    let l = InstallLimits::default();
    let ok = run_op(
        &sb.store,
        &PackageOp::Install {
            name: "example.pkg".into(),
            version: "1.0.0".into(),
            url: Some(path_str(&a).into()),
            sha256: None,
        },
        &l,
    );
    assert_eq!(ok.outcome, Ok(()));
    assert!(ok.install);
    let no_url = run_op(
        &sb.store,
        &PackageOp::Install {
            name: "example.pkg".into(),
            version: "1.0.0".into(),
            url: None,
            sha256: None,
        },
        &l,
    );
    assert!(no_url.outcome.unwrap_err().contains("no url"));
    let un = run_op(
        &sb.store,
        &PackageOp::Uninstall {
            name: "example.pkg".into(),
            version: None,
        },
        &l,
    );
    assert_eq!(
        (un.version.as_str(), un.outcome.clone(), un.install),
        ("1.0.0", Ok(()), false)
    );
    let again = run_op(
        &sb.store,
        &PackageOp::Uninstall {
            name: "example.pkg".into(),
            version: None,
        },
        &l,
    );
    assert!(again.outcome.is_err());
}
