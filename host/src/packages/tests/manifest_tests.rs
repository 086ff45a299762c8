//! Manifest parsing: the example package parses, and each kind of mistake is reported with
//! the field path that names it.

use super::fixtures::{bytes, example_manifest};
use crate::packages::{resolve_entrypoint, Manifest, ManifestError, Runtime, MAX_MANIFEST_BYTES};
use astra_core::work::inventory::HandlerKey;
use serde_json::{json, Value};

fn example() -> Value {
    example_manifest("example.pkg", "1.0.0")
}

/// Parses `v` after `edit`, expecting an `Invalid` error; returns (path, reason).
fn invalid(edit: impl FnOnce(&mut Value)) -> (String, String) {
    let mut v = example();
    edit(&mut v);
    match Manifest::parse(&bytes(&v)) {
        Err(ManifestError::Invalid { path, reason }) => (path, reason),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn example_package_parses_and_yields_handlers() {
    let m = Manifest::parse(&bytes(&example())).unwrap();
    assert_eq!(
        (m.name.as_str(), m.version.as_str()),
        ("example.pkg", "1.0.0")
    );
    let hs = m.handlers().unwrap();
    assert_eq!(hs.len(), 7);
    let fb = hs
        .iter()
        .find(|h| h.key == HandlerKey::new("example.pkg", "1.0.0", "example.pkg.feedback_demo"))
        .unwrap();
    assert_eq!(fb.entrypoint.to_string(), "adapters.demo:feedback_showcase");
    assert_eq!(fb.adapter, "demo");
    assert_eq!(fb.runtime, Runtime::Python);
    let echo = &hs[0];
    assert_eq!(echo.key.node_type, "example.pkg.echo");
    assert_eq!(echo.entrypoint.to_string(), "adapters.echo:echo");
}

#[test]
fn round_trips_through_serde() {
    let m = Manifest::parse(&bytes(&example())).unwrap();
    let again = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap();
    assert_eq!(m, again);
}

#[test]
fn unknown_node_adapter_names_the_node() {
    let (path, reason) = invalid(|v| v["nodes"][2]["adapter"] = json!("nope"));
    assert_eq!(path, "nodes[2].adapter");
    assert!(
        reason.contains("\"nope\"") && reason.contains("echo"),
        "{reason}"
    );
}

#[test]
fn duplicate_node_type() {
    let (path, reason) = invalid(|v| v["nodes"][3]["type"] = json!("example.pkg.echo"));
    assert_eq!(path, "nodes[3].type");
    assert!(reason.contains("nodes[0]"), "{reason}");
}

#[test]
fn duplicate_adapter_name() {
    let (path, _) = invalid(|v| v["adapters"][1]["name"] = json!("echo"));
    assert_eq!(path, "adapters[1].name");
}

#[test]
fn pattern_violations_have_paths() {
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("name", Box::new(|v| v["name"] = json!("Example.Pkg"))),
        ("version", Box::new(|v| v["version"] = json!("1.0"))),
        (
            "schemaVersion",
            Box::new(|v| v["schemaVersion"] = json!("v1")),
        ),
        (
            "adapters[1].entrypoint",
            Box::new(|v| v["adapters"][1]["entrypoint"] = json!("adapters/demo")),
        ),
        (
            "adapters[0].capabilities",
            Box::new(|v| v["adapters"][0]["capabilities"] = json!([])),
        ),
        (
            "nodes[6].handler",
            Box::new(|v| v["nodes"][6]["handler"] = json!("feedback-showcase")),
        ),
        (
            "nodes[1].type",
            Box::new(|v| v["nodes"][1]["type"] = json!("bad type")),
        ),
        (
            "nodes[0].schema",
            Box::new(|v| v["nodes"][0]["schema"] = json!("object")),
        ),
        ("adapters", Box::new(|v| v["adapters"] = json!([]))),
        ("nodes", Box::new(|v| v["nodes"] = json!([]))),
        (
            "signature.sha256",
            Box::new(|v| v["signature"] = json!({"sha256": "abc"})),
        ),
        (
            "resources[0].sha256",
            Box::new(|v| v["resources"] = json!([{"path": "a", "type": "data", "sha256": "zz"}])),
        ),
    ];
    for (want, edit) in cases {
        let (path, reason) = invalid(edit);
        assert_eq!(path, want, "reason: {reason}");
        assert!(!reason.is_empty());
    }
}

#[test]
fn serde_errors_carry_paths() {
    // Unknown key where the schema forbids extra properties.
    let (path, reason) = invalid(|v| v["nodes"][1]["runtimes"] = json!(["python"]));
    assert!(path.starts_with("nodes[1]"), "{path}");
    assert!(reason.contains("runtimes"), "{reason}");
    let (path, _) = invalid(|v| v["nodes"][0]["ui"]["widgets"][0]["binding"]["extra"] = json!(1));
    assert!(path.starts_with("nodes[0].ui.widgets[0].binding"), "{path}");
    let (path, _) = invalid(|v| v["nodes"][4]["status"] = json!("beta"));
    assert_eq!(path, "nodes[4].status");
    let (path, reason) = invalid(|v| {
        v.as_object_mut().unwrap().remove("python");
    });
    assert_eq!(path, "(top level)");
    assert!(reason.contains("python"), "{reason}");
    // An unknown key is reported at its own path.
    let (path, reason) = invalid(|v| v["extensions"] = json!({}));
    assert_eq!(path, "extensions");
    assert!(reason.contains("unknown field"), "{reason}");
}

#[test]
fn open_objects_accept_anything() {
    let mut v = example();
    v["nodes"][0]["config"] = json!({"anything": [1, {"x": null}]});
    v["adapters"][0]["metadata"] = json!({"owner": "team", "runtime": "python"});
    v["nodes"][0]["schema"] = json!(true);
    v["nodes"][0]["ui"]["widgets"][0]["options"] = json!({"rows": 3});
    let m = Manifest::parse(&bytes(&v)).unwrap();
    assert_eq!(m.nodes[0].config["anything"][0], json!(1));
}

#[test]
fn runtimes_from_metadata() {
    let mut v = example();
    v["adapters"][0]["metadata"] =
        json!({"runtime": "process", "command": "bin/echo", "args": ["--json"]});
    v["adapters"][1]["metadata"] = json!({"runtime": "builtin"});
    let m = Manifest::parse(&bytes(&v)).unwrap();
    let hs = m.handlers().unwrap();
    assert_eq!(
        hs[0].runtime,
        Runtime::Process {
            command: "bin/echo".into(),
            args: vec!["--json".into()]
        }
    );
    assert_eq!(hs[1].runtime, Runtime::Builtin);
    assert_eq!(hs[0].adapter_metadata["command"], json!("bin/echo"));
}

#[test]
fn bad_runtimes_are_rejected() {
    let cases = [
        (json!({"runtime": "ruby"}), "adapters[0].metadata.runtime"),
        (json!({"runtime": 3}), "adapters[0].metadata.runtime"),
        (
            json!({"runtime": "process"}),
            "adapters[0].metadata.command",
        ),
        (
            json!({"runtime": "process", "command": "../../bin/sh"}),
            "adapters[0].metadata.command",
        ),
        (
            json!({"runtime": "process", "command": "/bin/sh"}),
            "adapters[0].metadata.command",
        ),
        (
            json!({"runtime": "process", "command": "x", "args": [1]}),
            "adapters[0].metadata.args[0]",
        ),
        (
            json!({"runtime": "process", "command": "x", "args": "a"}),
            "adapters[0].metadata.args",
        ),
    ];
    for (meta, want) in cases {
        let (path, _) = invalid(|v| v["adapters"][0]["metadata"] = meta.clone());
        assert_eq!(path, want, "{meta}");
    }
}

#[test]
fn hostile_input_is_an_error_not_a_crash() {
    // Oversized.
    let big = vec![b' '; MAX_MANIFEST_BYTES as usize + 1];
    assert!(matches!(
        Manifest::parse(&big),
        Err(ManifestError::TooLarge { .. })
    ));
    // Deep nesting inside an open object: stopped by the recursion limit.
    let mut v = example();
    v["nodes"][0]["config"] = json!({});
    let mut text = String::from_utf8(bytes(&v)).unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    text = text.replacen(
        "\"config\": {}",
        &format!("\"config\": {{\"x\": {deep}}}"),
        1,
    );
    assert!(matches!(
        Manifest::parse(text.as_bytes()),
        Err(ManifestError::Syntax { .. })
    ));
    // Not JSON, truncated, trailing garbage, wrong top-level type.
    for junk in [&b"\x00\xff"[..], b"{\"name\": ", b"[]", b"null"] {
        assert!(Manifest::parse(junk).is_err());
    }
    let mut trailing = bytes(&example());
    trailing.extend_from_slice(b" {}");
    assert!(matches!(
        Manifest::parse(&trailing),
        Err(ManifestError::Syntax { .. })
    ));
}

#[test]
fn entrypoint_resolution_rule() {
    let cases = [
        ("adapters.echo", "echo", "adapters.echo:echo"),
        (
            "adapters.demo",
            "feedback_showcase",
            "adapters.demo:feedback_showcase",
        ),
        ("pkg.mod:handle", "handle", "pkg.mod:handle"),
        ("pkg.mod:Echo", "run", "pkg.mod:Echo.run"),
        ("pkg.mod:Outer.run", "run", "pkg.mod:Outer.run"),
        ("pkg.mod:Outer.Inner", "go", "pkg.mod:Outer.Inner.go"),
    ];
    for (ep, handler, want) in cases {
        assert_eq!(
            resolve_entrypoint(ep, handler).to_string(),
            want,
            "{ep} + {handler}"
        );
    }
    let e = resolve_entrypoint("pkg.mod:Echo", "run");
    assert_eq!(
        (e.module.as_str(), e.attr.as_str()),
        ("pkg.mod", "Echo.run")
    );
}
