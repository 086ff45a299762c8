//! Test fixtures built in code: a manifest modelled on the AstraFlow example package
//! (`example.pkg` 1.0.0), package file sets, zip/tar/tar.gz builders that can also write
//! hostile entries, and a recursive directory snapshot for "nothing else changed" checks.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

fn node(node_type: &str, adapter: &str, handler: &str, label: &str) -> Value {
    json!({
        "type": node_type,
        "status": "published",
        "category": "Examples",
        "label": label,
        "description": format!("{label} (example node)"),
        "tags": ["example"],
        "adapter": adapter,
        "handler": handler,
        "config": {},
        "schema": {
            "parameters": {"type": "object", "properties": {}, "required": []},
            "results": {"type": "object", "properties": {}, "required": []}
        },
        "ui": {
            "widgets": [{
                "key": "message", "label": "Message", "component": "text",
                "binding": {"path": "/parameters/message", "mode": "write"}
            }],
            "outputPorts": [{
                "key": "out", "label": "Out",
                "binding": {"path": "/results/out", "mode": "read"}
            }]
        }
    })
}

/// A manifest shaped like `worker/packages/example_pkg/1.0.0/manifest.json@c4bf80a`.
pub fn example_manifest(name: &str, version: &str) -> Value {
    json!({
        "schemaVersion": "1.0.0",
        "name": name,
        "version": version,
        "description": "Example echo package used for smoke testing the worker pipeline.",
        "adapters": [
            {"name": "echo", "entrypoint": "adapters.echo", "capabilities": ["example.pkg.echo"]},
            {"name": "demo", "entrypoint": "adapters.demo", "capabilities": [
                "example.pkg.load_config", "example.pkg.transform_text", "example.pkg.delay",
                "example.pkg.send_notification", "example.pkg.audit_log",
                "example.pkg.feedback_demo"
            ]}
        ],
        "python": {"requires": ">=3.10,<3.12", "dependencies": []},
        "nodes": [
            node("example.pkg.echo", "echo", "echo", "Echo Message"),
            node("example.pkg.load_config", "demo", "load_config", "Load Welcome Config"),
            node("example.pkg.transform_text", "demo", "transform_text", "Personalise Message"),
            node("example.pkg.delay", "demo", "delay", "Schedule Delivery"),
            node("example.pkg.send_notification", "demo", "send_notification", "Send Notification"),
            node("example.pkg.audit_log", "demo", "audit_log", "Audit Log"),
            node("example.pkg.feedback_demo", "demo", "feedback_showcase", "Feedback Demo")
        ]
    })
}

pub fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

/// The files of a package (relative path, content), with `marker` written into echo.py so
/// tests can tell installs apart.
pub fn package_files(name: &str, version: &str, marker: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("manifest.json".into(), bytes(&example_manifest(name, version))),
        ("adapters/__init__.py".into(), Vec::new()),
        (
            "adapters/echo.py".into(),
            format!("# {marker}\ndef echo(ctx):\n    return {{'echo': ctx.params.get('message', '')}}\n")
                .into_bytes(),
        ),
        ("adapters/demo.py".into(), b"def delay(ctx):\n    return {}\n".to_vec()),
    ]
}

/// Writes `files` under `dir`.
pub fn write_tree(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (rel, data) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

pub fn prefixed(prefix: &str, files: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|(p, d)| (format!("{prefix}{p}"), d.clone()))
        .collect()
}

/// A zip of regular files (deflated).
pub fn zip_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A zip of the given files plus one symlink entry.
pub fn zip_with_symlink(files: &[(String, Vec<u8>)], link: &str, target: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, data) in files {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.add_symlink(link, target, opts).unwrap();
    w.finish().unwrap().into_inner()
}

/// One tar entry with a raw (unchecked) name, so tests can write what the tar crate's
/// builder would refuse (`../x`, `/abs`).
pub struct RawEntry<'a> {
    pub name: &'a str,
    pub kind: tar::EntryType,
    pub data: &'a [u8],
    pub link: Option<&'a str>,
}

impl<'a> RawEntry<'a> {
    pub fn file(name: &'a str, data: &'a [u8]) -> Self {
        RawEntry {
            name,
            kind: tar::EntryType::Regular,
            data,
            link: None,
        }
    }
}

pub fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name = [0; 100];
            gnu.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            if let Some(link) = e.link {
                gnu.linkname = [0; 100];
                gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(if e.kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<RawEntry<'_>> = files.iter().map(|(n, d)| RawEntry::file(n, d)).collect();
    raw_tar(&entries)
}

pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every path under `root` (not following links) with its content; directories map to
/// `None`, links to their target prefixed with `->`.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let ft = entry.file_type().unwrap();
            if ft.is_symlink() {
                let t = std::fs::read_link(&path).unwrap();
                out.insert(rel, Some(format!("-> {}", t.display()).into_bytes()));
            } else if ft.is_dir() {
                out.insert(rel, None);
                walk(root, &path, out);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    walk(root, root, &mut out);
    out
}
