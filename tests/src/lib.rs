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

/// Declares one `#[test]` per conformance scenario against the given binaries, so every
/// driver runs exactly the same suite: `astra_tests::conformance_suite!("astra-worker");`.
#[macro_export]
macro_rules! conformance_suite {
    ($bin:literal) => {
        fn d() -> $crate::conformance::Drivers {
            $crate::conformance::Drivers { worker: $crate::binary($bin), sched: $crate::binary($bin) }
        }
        fn example_pkg() -> std::path::PathBuf {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/packages/example_pkg/1.0.0")
        }
        $crate::conformance_suite!(@tests session, dispatch_result, duplicate_dispatch, concurrency_violation,
            reconnect, outbox_replay_after_kill, malformed_frames, drain_on_sigterm, verify_command,
            config_show_redacts, install_does_not_block_the_loop);
        #[test]
        fn packages_over_the_wire() {
            $crate::conformance::packages_over_the_wire(&d(), &example_pkg());
        }
        #[test]
        fn hostile_archives_over_the_wire() {
            $crate::conformance::hostile_archives_over_the_wire(&d(), &example_pkg());
        }
    };
    (@tests $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&d());
            }
        )*
    };
}
