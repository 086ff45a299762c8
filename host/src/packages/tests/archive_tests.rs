//! Archive format detection by content and extraction details (root finding, modes).

use super::fixtures::*;
use crate::packages::archive::find_package_root;
use crate::packages::{detect_format, extract, ArchiveError, ArchiveFormat, ExtractLimits};
use std::fs;

#[test]
fn detects_format_from_content_not_name() {
    let t = tempfile::tempdir().unwrap();
    let files = package_files("example.pkg", "1.0.0", "d");
    let cases = [
        // Names chosen to lie about the content.
        ("a.tar.gz", zip_of(&files), ArchiveFormat::Zip),
        ("b.zip", tar_of(&files), ArchiveFormat::Tar),
        ("c.cwx", gz(&tar_of(&files)), ArchiveFormat::TarGz),
    ];
    for (name, data, want) in cases {
        let p = t.path().join(name);
        fs::write(&p, data).unwrap();
        assert_eq!(detect_format(&p).unwrap(), want, "{name}");
    }
    let refused = [
        (gz(b"just some text, not a tar"), "gzip"),
        (b"BZh91AY&SY...".to_vec(), "bzip2"),
        (b"\xFD7zXZ\x00\x00".to_vec(), "xz"),
    ];
    for (data, format) in refused {
        let p = t.path().join("x.zip");
        fs::write(&p, data).unwrap();
        let e = detect_format(&p).unwrap_err();
        assert!(matches!(e, ArchiveError::UnsupportedFormat { .. }), "{e}");
        assert!(e.to_string().contains(format), "{e}");
    }
    let p = t.path().join("empty.zip");
    fs::write(&p, b"").unwrap();
    assert!(matches!(
        detect_format(&p),
        Err(ArchiveError::UnknownFormat { .. })
    ));
}

#[test]
fn finds_manifest_at_root_or_in_one_top_level_directory() {
    let files = package_files("example.pkg", "1.0.0", "r");
    let t = tempfile::tempdir().unwrap();

    let at_root = t.path().join("root");
    fs::create_dir(&at_root).unwrap();
    let a = t.path().join("a");
    fs::write(&a, zip_of(&files)).unwrap();
    let stats = extract(&a, &at_root, &ExtractLimits::default()).unwrap();
    assert_eq!(stats.entries, 4);
    assert_eq!(find_package_root(&at_root).unwrap(), at_root);

    // One folder plus macOS Finder clutter.
    let nested = t.path().join("nested");
    fs::create_dir(&nested).unwrap();
    let mut f = prefixed("example_pkg/", &files);
    f.push((
        "__MACOSX/example_pkg/._manifest.json".into(),
        b"junk".to_vec(),
    ));
    let b = t.path().join("b");
    fs::write(&b, zip_of(&f)).unwrap();
    extract(&b, &nested, &ExtractLimits::default()).unwrap();
    assert_eq!(
        find_package_root(&nested).unwrap(),
        nested.join("example_pkg")
    );

    // Two top-level folders: ambiguous, so no root.
    let two = t.path().join("two");
    fs::create_dir(&two).unwrap();
    let mut f = prefixed("one/", &files);
    f.extend(prefixed("two/", &files));
    let c = t.path().join("c");
    fs::write(&c, tar_of(&f)).unwrap();
    extract(&c, &two, &ExtractLimits::default()).unwrap();
    assert!(find_package_root(&two).is_none());
}

#[cfg(unix)]
#[test]
fn keeps_only_the_executable_bit() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = tar::Builder::new(Vec::new());
    for (name, mode) in [("bin/run", 0o4755), ("data.txt", 0o666)] {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(2);
        h.set_mode(mode);
        h.set_cksum();
        b.append(&h, &b"hi"[..]).unwrap();
    }
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    fs::write(&a, b.into_inner().unwrap()).unwrap();
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    extract(&a, &out, &ExtractLimits::default()).unwrap();
    let mode = |p: &str| fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("bin/run") & 0o7000, 0, "setuid must not survive");
    assert_ne!(mode("bin/run") & 0o100, 0, "owner exec bit kept");
    assert_eq!(mode("data.txt") & 0o111, 0);
}

#[test]
fn directory_entries_and_repeated_directories_are_fine() {
    let t = tempfile::tempdir().unwrap();
    let entries = [
        RawEntry {
            name: "./",
            kind: tar::EntryType::Directory,
            data: b"",
            link: None,
        },
        RawEntry {
            name: "adapters/",
            kind: tar::EntryType::Directory,
            data: b"",
            link: None,
        },
        RawEntry::file("adapters/echo.py", b"x"),
        RawEntry {
            name: "adapters",
            kind: tar::EntryType::Directory,
            data: b"",
            link: None,
        },
    ];
    let a = t.path().join("a");
    fs::write(&a, raw_tar(&entries)).unwrap();
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    extract(&a, &out, &ExtractLimits::default()).unwrap();
    assert_eq!(fs::read(out.join("adapters/echo.py")).unwrap(), b"x");
}
