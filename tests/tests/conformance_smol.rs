//! The conformance suite against the smol build (`astra-worker-smol`).

use astra_tests::conformance::{self as c, Drivers};

fn d() -> Drivers {
    Drivers {
        worker: astra_tests::binary("astra-worker-smol"),
        sched: astra_tests::binary("astra-worker-smol"),
    }
}

#[test]
fn session() {
    c::session(&d());
}
#[test]
fn dispatch_result() {
    c::dispatch_result(&d());
}
#[test]
fn duplicate_dispatch() {
    c::duplicate_dispatch(&d());
}
#[test]
fn concurrency_violation() {
    c::concurrency_violation(&d());
}
#[test]
fn reconnect() {
    c::reconnect(&d());
}
#[test]
fn outbox_replay_after_kill() {
    c::outbox_replay_after_kill(&d());
}
#[test]
fn malformed_frames() {
    c::malformed_frames(&d());
}
#[test]
fn drain_on_sigterm() {
    c::drain_on_sigterm(&d());
}
#[test]
fn verify_command() {
    c::verify_command(&d());
}
#[test]
fn config_show_redacts() {
    c::config_show_redacts(&d());
}
#[test]
fn packages_over_the_wire() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/packages/example_pkg/1.0.0");
    c::packages_over_the_wire(&d(), &example);
}
#[test]
fn hostile_archives_over_the_wire() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/packages/example_pkg/1.0.0");
    c::hostile_archives_over_the_wire(&d(), &example);
}
#[test]
fn install_does_not_block_the_loop() {
    c::install_does_not_block_the_loop(&d());
}
