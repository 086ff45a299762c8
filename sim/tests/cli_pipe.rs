//! The binary's report goes to a reader that may leave early (`astra-sim --seed 3 | head -1`):
//! a closed stdout must not turn a passing run into a panic or a failing exit code.

use std::process::{Command, Stdio};

fn run_into_closed_pipe(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader); // every write to `writer` now fails with EPIPE
    let child = Command::new(env!("CARGO_BIN_EXE_astra-sim"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn astra-sim");
    child.wait_with_output().expect("wait for astra-sim")
}

#[test]
fn a_closed_stdout_keeps_the_verdict() {
    for args in [
        &["--seed", "3", "--minutes", "0.5"][..],
        &["--seeds", "4", "--minutes", "0.5", "--jobs", "1"][..],
        &["--help"][..],
    ] {
        let out = run_into_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    }
}
