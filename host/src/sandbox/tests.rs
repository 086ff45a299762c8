//! Proofs that the sandbox holds on this machine: network, environment, cwd, user, limits
//! (fork bomb, memory hog, CPU loop), and that stopped tasks leave no process behind.
//! Every test bounds itself with a deadline of a few seconds.

use super::*;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn limits() -> SandboxLimits {
    SandboxLimits {
        cpu_seconds: Some(1),
        address_space_bytes: Some(256 << 20),
        open_files: Some(64),
        processes: Some(32),
        file_size_bytes: Some(1 << 20),
    }
}

fn sandbox_with(network: NetworkPolicy) -> Sandbox {
    Sandbox::new(SandboxConfig {
        limits: limits(),
        network,
        require_network_isolation: false,
        user: UserPolicy::Auto,
        kill_grace: Duration::from_millis(300),
        subreaper: true,
    })
}

fn sandbox() -> Sandbox {
    sandbox_with(NetworkPolicy::Isolated)
}

/// A task directory like the runner's, under a root the sandbox user may traverse.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let dir = tmp.path().join("data").join("run").join("task");
    std::fs::create_dir_all(&dir).unwrap();
    (tmp, dir)
}

struct Ran {
    sup: Supervised,
    stdout: String,
    stderr: String,
    pgid: i32,
    uid: Option<u32>,
    elapsed: Duration,
}

fn run_in(
    sb: &Sandbox,
    dir: &Path,
    program: &str,
    args: &[&str],
    env: Vec<(String, String)>,
    limit: Duration,
) -> Ran {
    let req = SpawnRequest {
        program: program.into(),
        args: args.iter().map(Into::into).collect(),
        env,
        cwd: dir.to_path_buf(),
        feedback_pipe: false,
    };
    let start = Instant::now();
    let mut child = sb.spawn(&req).expect("spawn");
    drop(child.stdin.take());
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let sup = child.supervise(Some(start + limit), || false);
    let (pgid, uid) = (child.pgid(), child.uid());
    drop(child);
    Ran {
        sup,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        pgid,
        uid,
        elapsed: start.elapsed(),
    }
}

fn sh(sb: &Sandbox, dir: &Path, script: &str, limit: Duration) -> Ran {
    run_in(sb, dir, "/bin/sh", &["-c", script], Vec::new(), limit)
}

fn am_root() -> bool {
    // SAFETY: getter without preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn isolation_report_is_honest() {
    let sb = sandbox();
    let r = sb.isolation_report();
    let text = r.to_string();
    assert!(
        r.network_isolated,
        "network isolation is NOT active on this machine: {} (the network tests below would be meaningless)",
        r.network_detail
    );
    assert!(text.contains("network namespace"), "{text}");
    if am_root() {
        assert!(
            matches!(r.user, EffectiveUser::Pool { .. }),
            "root must drop to a per-task uid: {text}"
        );
    }
    let allowed = sandbox_with(NetworkPolicy::Allowed);
    assert!(!allowed.isolation_report().network_isolated);
    assert!(allowed
        .isolation_report()
        .to_string()
        .contains("share the worker's network"));
}

/// The connection attempt the two network tests make: bash's /dev/tcp.
fn connect_script(port: u16) -> String {
    format!("exec 5<>/dev/tcp/127.0.0.1/{port} && echo connected")
}

#[test]
fn a_task_cannot_reach_the_network() {
    let sb = sandbox();
    assert!(
        sb.isolation_report().network_isolated,
        "network isolation unavailable: {}",
        sb.isolation_report().network_detail
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_tmp, dir) = workdir();
    let ran = run_in(
        &sb,
        &dir,
        "/usr/bin/bash",
        &["-c", &connect_script(port)],
        Vec::new(),
        Duration::from_secs(5),
    );
    assert!(
        !ran.stdout.contains("connected"),
        "the task reached 127.0.0.1:{port}"
    );
    assert!(!ran.sup.status.success());
    assert!(
        ran.stderr.contains("unreachable") || ran.stderr.contains("refused"),
        "stderr: {}",
        ran.stderr
    );
    assert!(
        listener.accept().is_err(),
        "the listener saw a connection from the sandbox"
    );
}

#[test]
fn the_network_probe_itself_works_when_isolation_is_off() {
    // Control for the test above: the same attempt succeeds without the namespace, so a
    // failure there really is the sandbox's doing.
    let sb = sandbox_with(NetworkPolicy::Allowed);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_tmp, dir) = workdir();
    let ran = run_in(
        &sb,
        &dir,
        "/usr/bin/bash",
        &["-c", &connect_script(port)],
        Vec::new(),
        Duration::from_secs(5),
    );
    assert!(
        ran.stdout.contains("connected"),
        "stdout {:?} stderr {:?}",
        ran.stdout,
        ran.stderr
    );
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_ok());
}

#[test]
fn environment_is_scrubbed() {
    // Set once for the whole test binary; children always start from an empty environment.
    std::env::set_var("ASTRA_SANDBOX_TEST_SECRET", "hunter2");
    std::env::set_var("TZ", "UTC");
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let ran = run_in(
        &sb,
        &dir,
        "/usr/bin/env",
        &[],
        vec![("EXPLICIT".into(), "yes".into())],
        Duration::from_secs(5),
    );
    assert!(ran.sup.status.success(), "{}", ran.stderr);
    assert!(
        !ran.stdout.contains("hunter2"),
        "secret leaked: {}",
        ran.stdout
    );
    let vars: Vec<&str> = ran.stdout.lines().collect();
    assert!(
        vars.contains(&format!("PATH={SAFE_PATH}").as_str()),
        "{vars:?}"
    );
    assert!(
        vars.contains(&format!("HOME={}", dir.display()).as_str()),
        "{vars:?}"
    );
    assert!(vars.contains(&"EXPLICIT=yes"), "{vars:?}");
    assert!(vars.contains(&"TZ=UTC"), "{vars:?}");
    for v in &vars {
        let name = v.split('=').next().unwrap_or("");
        assert!(
            ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "EXPLICIT"].contains(&name),
            "unexpected variable {v}"
        );
    }
}

#[test]
fn cwd_is_the_task_dir_and_it_is_writable_by_the_task() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let ran = sh(
        &sb,
        &dir,
        "pwd; echo hi > out.txt && id -u",
        Duration::from_secs(5),
    );
    assert!(ran.sup.status.success(), "{}", ran.stderr);
    let mut lines = ran.stdout.lines();
    assert_eq!(
        Path::new(lines.next().unwrap()),
        dir.canonicalize().unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        "hi\n"
    );
    let uid: u32 = lines.next().unwrap().parse().unwrap();
    if am_root() {
        assert_ne!(uid, 0, "the task ran as root");
        assert_eq!(Some(uid), ran.uid);
        // Afterwards the worker owns the directory again.
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().uid(), 0);
    }
}

#[test]
fn limits_are_applied() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let ran = sh(
        &sb,
        &dir,
        "ulimit -n; ulimit -c; ulimit -t; ulimit -p; ulimit -v",
        Duration::from_secs(5),
    );
    assert_eq!(
        ran.stdout.lines().collect::<Vec<_>>(),
        vec!["64", "0", "1", "32", "262144"],
        "{}",
        ran.stderr
    );
}

#[test]
fn feedback_pipe_is_fd_3_and_other_fds_do_not_leak() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let req = SpawnRequest {
        program: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            "echo fb >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '".into(),
        ],
        env: Vec::new(),
        cwd: dir.clone(),
        feedback_pipe: true,
    };
    let mut child = sb.spawn(&req).unwrap();
    drop(child.stdin.take());
    let mut fb = child.feedback.take().unwrap();
    let mut out = child.stdout.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        fb.read_to_string(&mut s).unwrap();
        s
    });
    let sup = child.supervise(Some(Instant::now() + Duration::from_secs(5)), || false);
    assert!(sup.status.success());
    let mut listed = String::new();
    out.read_to_string(&mut listed).unwrap();
    assert_eq!(t.join().unwrap(), "fb\n");
    // 0-2 stdio, 3 feedback, plus the directory fd `ls` itself opens.
    let fds: Vec<i32> = listed
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert!(
        fds.iter().filter(|&&f| f > 3).count() <= 1,
        "leaked fds: {fds:?}"
    );
}

#[test]
fn a_timed_out_task_is_killed_with_its_whole_group() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    // Background children plus a leader that ignores SIGTERM: needs the SIGKILL escalation.
    let ran = sh(
        &sb,
        &dir,
        "trap '' TERM; sleep 30 & sleep 30 & sleep 30",
        Duration::from_millis(200),
    );
    assert_eq!(ran.sup.stopped, Some(StopCause::Deadline));
    assert_eq!(ran.sup.status, ExitStatus::Signaled(libc::SIGKILL));
    assert!(
        ran.elapsed >= Duration::from_millis(500),
        "SIGKILL came before the grace period: {:?}",
        ran.elapsed
    );
    assert!(ran.elapsed < Duration::from_secs(5), "{:?}", ran.elapsed);
    assert!(
        !group_exists(ran.pgid),
        "process group {} survived",
        ran.pgid
    );
}

#[test]
fn sigterm_is_tried_first() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let ran = sh(&sb, &dir, "sleep 30", Duration::from_millis(100));
    assert_eq!(ran.sup.stopped, Some(StopCause::Deadline));
    assert_eq!(ran.sup.status, ExitStatus::Signaled(libc::SIGTERM));
    assert!(!group_exists(ran.pgid));
}

#[test]
fn processes_that_leave_the_group_are_swept_too() {
    if !am_root() {
        eprintln!("skipped: the uid sweep needs a root worker");
        return;
    }
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    // `setsid` puts the sleeper in a new session: killpg alone would miss it.
    let ran = sh(
        &sb,
        &dir,
        "setsid sleep 30 & echo $!; sleep 0.2",
        Duration::from_secs(5),
    );
    let pid: i32 = ran
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no pid: {:?} {:?}", ran.stdout, ran.stderr));
    // SAFETY: signal 0 only checks existence.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "escaped process {pid} survived the task");
    assert!(sys::processes_of_uid(ran.uid.unwrap()).is_empty());
}

#[test]
fn a_fork_bomb_is_contained() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let ran = sh(
        &sb,
        &dir,
        "bomb() { bomb & bomb; }; bomb",
        Duration::from_secs(10),
    );
    assert!(!ran.sup.status.success());
    assert_eq!(
        ran.sup.stopped, None,
        "the process limit should stop it, not the deadline"
    );
    assert!(ran.stderr.contains("fork"), "{}", ran.stderr);
    assert!(ran.elapsed < Duration::from_secs(5), "{:?}", ran.elapsed);
    assert!(!group_exists(ran.pgid));
    if let Some(uid) = ran.uid {
        assert!(
            sys::processes_of_uid(uid).is_empty(),
            "bomb processes survived"
        );
    }
}

#[test]
fn a_memory_hog_hits_the_address_space_limit() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    // `tail` buffers an endless line without a newline: unbounded allocation.
    let ran = run_in(
        &sb,
        &dir,
        "/usr/bin/tail",
        &["/dev/zero"],
        Vec::new(),
        Duration::from_secs(10),
    );
    assert!(!ran.sup.status.success());
    assert_eq!(ran.sup.stopped, None);
    assert!(
        ran.stderr.contains("memory exhausted"),
        "{:?} {}",
        ran.sup.status,
        ran.stderr
    );
    assert!(ran.elapsed < Duration::from_secs(5));
}

#[test]
fn a_cpu_loop_hits_the_cpu_limit() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let ran = sh(&sb, &dir, "while :; do :; done", Duration::from_secs(10));
    assert_eq!(ran.sup.stopped, None);
    assert_eq!(
        ran.sup.status,
        ExitStatus::Signaled(libc::SIGXCPU),
        "{}",
        ran.stderr
    );
    assert!(ran.sup.status.to_string().contains("CPU time limit"));
    assert!(ran.elapsed < Duration::from_secs(5));
}

#[test]
fn relative_programs_are_rejected() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let req = SpawnRequest {
        program: "sh".into(),
        args: vec![],
        env: vec![],
        cwd: dir,
        feedback_pipe: false,
    };
    assert!(matches!(
        sb.spawn(&req),
        Err(SandboxError::RelativeProgram(_))
    ));
}

#[test]
fn a_missing_program_is_a_clear_error() {
    let sb = sandbox();
    let (_tmp, dir) = workdir();
    let req = SpawnRequest {
        program: "/nonexistent/handler".into(),
        args: vec![],
        env: vec![],
        cwd: dir.clone(),
        feedback_pipe: true,
    };
    let err = sb.spawn(&req).err().expect("spawn must fail");
    assert!(err.to_string().contains("/nonexistent/handler"), "{err}");
    if am_root() {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&dir).unwrap().uid(),
            0,
            "workdir not taken back after a failed spawn"
        );
    }
}
