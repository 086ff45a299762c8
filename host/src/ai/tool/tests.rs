//! tool_execution against the real sandbox.

use super::*;
use crate::ai::testutil::ctx;

fn tool(root: &Path, allow: &[&str], cap: usize) -> ToolExecution {
    let settings = AiSettings {
        artifact_root: root.join("artifacts"),
        tool_allowlist: allow.iter().map(|s| s.to_string()).collect(),
        tool_output_cap: cap,
        ..AiSettings::default()
    };
    ToolExecution::new(&settings, None)
}

fn outputs(out: &HandlerOutput) -> &Map<String, Value> {
    out["outputs"].as_object().unwrap()
}

#[test]
fn no_command_is_a_successful_noop() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tool(tmp.path(), &[], 100)
        .run(&ctx("tool_execution", json!({"op": "split"}), tmp.path()))
        .unwrap();
    assert_eq!(outputs(&out)["tool"], "split");
    assert_eq!(outputs(&out)["result"], "ok");
    assert_eq!(outputs(&out)["sandboxed"], true);
}

#[test]
fn allowlisted_command_runs_and_writes_an_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tool(tmp.path(), &["echo"], 1000);
    let out = t
        .run(&ctx(
            "tool_execution",
            json!({"command": "echo 'hello world' x"}),
            tmp.path(),
        ))
        .unwrap();
    let o = outputs(&out);
    assert_eq!(o["stdout"], "hello world x\n");
    assert_eq!(o["exit_code"], 0);
    assert_eq!(o["tool"], "noop");
    let art = &out["artifacts"][0];
    assert!(art["resource_id"]
        .as_str()
        .unwrap()
        .starts_with("artifact://run-1/task-1/"));
    let path = tmp.path().join("artifacts/run-1/task-1/output.json");
    assert_eq!(art["size_bytes"], std::fs::metadata(path).unwrap().len());
}

#[test]
fn unlisted_programs_and_shell_syntax_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tool(tmp.path(), &["echo"], 1000);
    let c = ctx(
        "tool_execution",
        json!({"command": "cat /etc/passwd"}),
        tmp.path(),
    );
    let e = t.run(&c).unwrap_err();
    assert!(
        e.message
            .starts_with("parameter `command`: program \"cat\" is not in the tool allowlist"),
        "{}",
        e.message
    );
    let e = t
        .run(&ctx(
            "tool_execution",
            json!({"command": "echo hi; cat /etc/passwd"}),
            tmp.path(),
        ))
        .unwrap_err();
    assert!(e.message.contains("shell syntax (';')"), "{}", e.message);
    let e = t
        .run(&ctx(
            "tool_execution",
            json!({"script": "echo hi"}),
            tmp.path(),
        ))
        .unwrap_err();
    assert!(
        e.message
            .starts_with("parameter `script`: program \"sh\" is not in the tool allowlist"),
        "{}",
        e.message
    );
    let e = t
        .run(&ctx(
            "tool_execution",
            json!({"command": "./echo"}),
            tmp.path(),
        ))
        .unwrap_err();
    assert!(
        e.message.contains("bare name or an absolute path"),
        "{}",
        e.message
    );
}

#[test]
fn failing_script_gives_a_failed_result_with_its_output() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tool(tmp.path(), &["sh"], 1000);
    let out = t
        .run(&ctx(
            "tool_execution",
            json!({"script": "echo out; echo err >&2; exit 3"}),
            tmp.path(),
        ))
        .unwrap();
    assert_eq!(out["status"], "failed");
    assert_eq!(
        out["error"]["message"],
        "sandbox command failed: exit status 3"
    );
    assert_eq!(outputs(&out)["stdout"], "out\n");
    assert_eq!(outputs(&out)["stderr"], "err\n");
}

#[test]
fn output_is_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tool(tmp.path(), &["head"], 100);
    let out = t
        .run(&ctx(
            "tool_execution",
            json!({"command": "head -c 100000 /dev/zero"}),
            tmp.path(),
        ))
        .unwrap();
    assert_eq!(outputs(&out)["stdout"].as_str().unwrap().len(), 100);
    assert_eq!(outputs(&out)["stdout_truncated"], true);
}

#[test]
fn timeout_kills_the_whole_group() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tool(tmp.path(), &["sh"], 1000);
    let start = Instant::now();
    // The background sleep keeps the pipes open: only a group kill ends this quickly.
    let out = t
        .run(&ctx(
            "tool_execution",
            json!({"script": "sleep 30 & sleep 30", "timeout_sec": 1}),
            tmp.path(),
        ))
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out["status"], "failed");
    assert_eq!(out["error"]["code"], codes::RUNNER_TIMEOUT);
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("sandbox command timed out"));
    let e = t
        .run(&ctx(
            "tool_execution",
            json!({"script": "true", "timeout_sec": 0}),
            tmp.path(),
        ))
        .unwrap_err();
    assert!(
        e.message.starts_with("parameter `timeout_sec`"),
        "{}",
        e.message
    );
}

#[test]
fn environment_carries_no_worker_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tool(tmp.path(), &["env"], 10_000);
    let out = t
        .run(&ctx(
            "tool_execution",
            json!({"command": "env"}),
            tmp.path(),
        ))
        .unwrap();
    let stdout = outputs(&out)["stdout"].as_str().unwrap();
    for line in stdout.lines() {
        let key = line.split('=').next().unwrap();
        assert!(
            ["PATH", "HOME", "LANG", "LC_ALL", "TZ"].contains(&key),
            "unexpected variable {line}"
        );
    }
    assert!(stdout.contains("PATH="));
}
