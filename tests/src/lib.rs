//! Cross-driver conformance harness. Scenarios in [`conformance`] take the paths of the
//! binaries under test and drive them as real processes over real loopback sockets: the
//! strict reference scheduler (`<bin> ref-scheduler`, JSON events on stdout, JSON control on
//! stdin) and the worker (`<bin> run`). Each driver's test file calls every scenario, so the
//! tokio and smol builds are held to exactly the same suite.

pub mod conformance;
pub mod procs;

use std::path::PathBuf;

/// Path of a workspace binary built into the same target dir as this test
/// (`cargo build --bins` first; `.ci/run` does).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the binaries first with `cargo build --workspace --bins`",
        p.display()
    );
    p
}
