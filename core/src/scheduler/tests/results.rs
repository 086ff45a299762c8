//! Rules 5–8: results (duplicates, FAILED releasing dependents, SKIPPED, unknown runs and
//! phantoms, fan-in counter bug), command.error attribution, feedback, late results.

use super::super::*;
use super::harness::*;
use serde_json::json;

fn run_with(h: &mut H, spec: RunSpec) -> Vec<(String, String, u64, ConnId)> {
    h.worker(1, "w1", &[PKG]);
    dispatches(&h.submit(spec))
}

fn finished(actions: &[SchedAction]) -> Vec<SchedEvent> {
    events(actions)
        .into_iter()
        .filter(|e| matches!(e, SchedEvent::RunFinished { .. }))
        .collect()
}

#[test]
fn duplicate_results_are_all_applied_and_counted() {
    let mut h = H::default_cfg();
    run_with(&mut h, RunSpec::new("r", vec![node("a"), node("b")]));
    let first = h.frame(1, &result("x1", "r", "a", "SUCCEEDED"));
    let second = h.frame(1, &result("x1", "r", "a", "SUCCEEDED"));
    let third = h.frame(1, &result("x2", "r", "a", "FAILED"));
    let dup = |out: &[SchedAction]| {
        events(out).into_iter().find_map(|e| match e {
            SchedEvent::ResultRecorded {
                duplicate, status, ..
            } => Some((duplicate, status)),
            _ => None,
        })
    };
    assert_eq!(dup(&first), Some((false, NodeStatus::Succeeded)));
    assert_eq!(dup(&second), Some((true, NodeStatus::Succeeded)));
    assert_eq!(
        dup(&third),
        Some((true, NodeStatus::Failed)),
        "a later copy overwrites the status"
    );
    assert_eq!(acks_for(&second), vec!["x1"], "every copy is acked");
    let a = h.s.run("r").unwrap().node("a").unwrap();
    assert_eq!(a.results_received, 3);
    assert_eq!(a.status, NodeStatus::Failed);
    let st = h.s.stats();
    assert_eq!((st.results_received, st.duplicate_results), (3, 2));
}

#[test]
fn failed_result_releases_dependents_and_fails_the_run_once() {
    let mut h = H::default_cfg();
    run_with(
        &mut h,
        RunSpec::new("r", vec![node("a"), node("b").after("a")]),
    );
    let out = h.frame(1, &result("x1", "r", "a", "FAILED"));
    assert_eq!(
        dispatches(&out)
            .into_iter()
            .map(|d| d.1)
            .collect::<Vec<_>>(),
        vec!["b"]
    );
    assert_eq!(
        finished(&out),
        vec![SchedEvent::RunFinished {
            run_id: "r".into(),
            status: RunStatus::Failed
        }]
    );
    // b still runs and reports; recorded, but the run is not announced again.
    let out = h.frame(1, &result("x2", "r", "b", "SUCCEEDED"));
    assert!(finished(&out).is_empty());
    let run = h.s.run("r").unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.node("b").unwrap().status, NodeStatus::Succeeded);
}

#[test]
fn skipped_counts_as_succeeded_and_run_succeeds_when_all_terminal() {
    let mut h = H::default_cfg();
    run_with(&mut h, RunSpec::new("r", vec![node("a"), node("b")]));
    let out = h.frame(1, &result("x1", "r", "a", "SKIPPED"));
    assert!(finished(&out).is_empty(), "b is still running");
    assert_eq!(h.s.run("r").unwrap().status, RunStatus::Running);
    assert_eq!(
        h.s.run("r").unwrap().node("a").unwrap().status,
        NodeStatus::Succeeded
    );
    let out = h.frame(1, &result("x2", "r", "b", "SUCCEEDED"));
    assert_eq!(
        finished(&out),
        vec![SchedEvent::RunFinished {
            run_id: "r".into(),
            status: RunStatus::Succeeded
        }]
    );
}

#[test]
fn result_error_becomes_node_and_run_error() {
    let mut h = H::default_cfg();
    run_with(&mut h, RunSpec::new("r", vec![node("a")]));
    let mut f = result("x1", "r", "a", "FAILED");
    f["payload"]["error"] = json!({"code": "E.X", "message": "bad"});
    h.frame(1, &f);
    let run = h.s.run("r").unwrap();
    assert_eq!(run.error.as_ref().map(|e| e.code.as_str()), Some("E.X"));
    assert_eq!(
        run.nodes[0].error.as_ref().map(|e| e.message.as_str()),
        Some("bad")
    );
    assert_eq!(
        run.nodes[0].last_result.as_ref().unwrap().result["echo"],
        "a"
    );
}

#[test]
fn unknown_run_is_ignored_and_unknown_task_is_a_phantom() {
    let mut h = H::default_cfg();
    run_with(&mut h, RunSpec::new("r", vec![node("a")]));
    let out = h.frame(1, &result("x1", "nope", "a", "SUCCEEDED"));
    assert_eq!(acks_for(&out), vec!["x1"]);
    assert!(matches!(
        events(&out).as_slice(),
        [SchedEvent::ResultIgnored { .. }]
    ));
    let out = h.frame(1, &result("x2", "r", "ghost", "FAILED"));
    assert!(matches!(
        events(&out).as_slice(),
        [SchedEvent::ResultRecorded { phantom: true, .. }]
    ));
    let run = h.s.run("r").unwrap();
    assert_eq!(run.phantom_results.get("ghost"), Some(&1));
    assert_eq!(
        run.status,
        RunStatus::Running,
        "phantoms stay out of the roll-up"
    );
    assert_eq!(
        (h.s.stats().results_unknown_run, h.s.stats().phantom_results),
        (1, 1)
    );
}

#[test]
fn fan_in_waits_for_all_dependencies_unless_the_counter_bug_is_on() {
    for bug in [false, true] {
        let mut h = H::new(SchedulerConfig {
            fan_in_counter_bug: bug,
            ..Default::default()
        });
        run_with(
            &mut h,
            RunSpec::new(
                "r",
                vec![node("a"), node("b"), node("c").after("a").after("b")],
            ),
        );
        h.frame(1, &result("x1", "r", "a", "SUCCEEDED"));
        // A duplicate of a's result: the real counter is decremented again.
        let out = h.frame(1, &result("x1", "r", "a", "SUCCEEDED"));
        assert_eq!(dispatches(&out).len(), usize::from(bug), "bug = {bug}");
        let out = h.frame(1, &result("x2", "r", "b", "SUCCEEDED"));
        assert_eq!(
            dispatches(&out).len(),
            usize::from(!bug),
            "bug = {bug}: c is dispatched exactly once"
        );
    }
}

#[test]
fn command_error_fails_the_node_named_by_corr() {
    let mut h = H::default_cfg();
    run_with(
        &mut h,
        RunSpec::new("r", vec![node("a"), node("b"), node("c")]),
    );
    let out = h.frame(
        1,
        &command_error("e1", "b", json!({"run_id": "r", "task_id": "b"})),
    );
    assert!(events(&out).contains(&SchedEvent::CommandErrorRecorded {
        run_id: Some("r".into()),
        node_id: Some("b".into()),
        code: "E.RUNNER.FAILURE".into(),
        message: "boom".into(),
        attribution: Attribution::Corr,
    }));
    let run = h.s.run("r").unwrap();
    let st: Vec<NodeStatus> = run.nodes.iter().map(|n| n.status).collect();
    assert_eq!(
        st,
        vec![NodeStatus::Running, NodeStatus::Failed, NodeStatus::Running]
    );
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.as_ref().unwrap();
    assert_eq!(err.details.as_ref().unwrap()["task_id"], "b");
    assert!(
        dispatches(&out).is_empty(),
        "nothing is released or retried"
    );
}

#[test]
fn command_error_with_dispatch_id_as_corr_fails_the_last_dispatched_node() {
    let mut h = H::default_cfg();
    let d = run_with(
        &mut h,
        RunSpec::new("r", vec![node("a"), node("b"), node("c")]),
    );
    // The Python worker's corr: the dispatch envelope id of a.
    let out = h.frame(1, &command_error("e1", &d[0].0, json!({"runId": "r"})));
    assert!(events(&out).iter().any(|e| matches!(e,
        SchedEvent::CommandErrorRecorded { node_id: Some(n), attribution: Attribution::LastDispatched, .. } if n == "c")));
    let run = h.s.run("r").unwrap();
    assert_eq!(
        run.node("a").unwrap().status,
        NodeStatus::Running,
        "the real failing node stays running"
    );
    assert_eq!(run.node("c").unwrap().status, NodeStatus::Failed);
}

#[test]
fn command_error_without_run_id_finds_the_run_by_last_dispatched_task() {
    let mut h = H::default_cfg();
    run_with(&mut h, RunSpec::new("r1", vec![node("a")]));
    h.submit(RunSpec::new("r2", vec![node("z")]));
    let out = h.frame(1, &command_error("e1", "z", json!({})));
    assert!(events(&out).iter().any(|e| matches!(e,
        SchedEvent::CommandErrorRecorded { run_id: Some(r), node_id: Some(n), .. } if r == "r2" && n == "z")));
    assert_eq!(h.s.run("r1").unwrap().status, RunStatus::Running);
    // Neither a run id nor a matching corr: nothing happens, still acked.
    let out = h.frame(1, &command_error("e2", "unknown", json!({"run": "nope"})));
    assert_eq!(acks_for(&out), vec!["e2"]);
    assert!(events(&out).iter().any(|e| matches!(
        e,
        SchedEvent::CommandErrorRecorded {
            attribution: Attribution::NoRun,
            ..
        }
    )));
}

#[test]
fn feedback_is_counted_and_results_merged() {
    let mut h = H::default_cfg();
    run_with(&mut h, RunSpec::new("r", vec![node("a")]));
    h.frame(
        1,
        &feedback(
            "f1",
            "r",
            "a",
            json!({"stage": "streaming", "progress": 0.25, "metadata": {"results": {"x": 1}}}),
        ),
    );
    let out = h.frame(
        1,
        &feedback(
            "f2",
            "r",
            "a",
            json!({"progress": 0.5, "message": "half", "metadata": {"results": {"y": 2}}}),
        ),
    );
    assert!(events(&out).contains(&SchedEvent::FeedbackRecorded {
        run_id: "r".into(),
        node_id: "a".into(),
        stage: None,
        progress: Some(0.5)
    }));
    h.frame(
        1,
        &feedback("f3", "r", "a", json!({"metadata": {"summary": "s"}})),
    );
    h.frame(1, &feedback("f4", "nope", "a", json!({})));
    let n = h.s.run("r").unwrap().node("a").unwrap();
    assert_eq!(n.feedback_count, 3);
    assert_eq!(
        n.last_stage.as_deref(),
        Some("streaming"),
        "kept when absent"
    );
    assert_eq!(
        (n.last_progress, n.last_message.as_deref()),
        (Some(0.5), Some("half"))
    );
    assert_eq!(
        serde_json::Value::Object(n.partial_result.clone()),
        json!({"x": 1, "y": 2, "summary": "s"})
    );
    assert_eq!(h.s.stats().feedback_received, 4);
}

/// `results` decides when present: an object is merged and `summary` beside it ignored; any
/// other `results` value merges nothing, not even the `summary` beside it.
#[test]
fn feedback_summary_counts_only_without_results() {
    let mut h = H::default_cfg();
    run_with(&mut h, RunSpec::new("r", vec![node("a")]));
    let meta = |m: serde_json::Value| json!({ "metadata": m });
    h.frame(
        1,
        &feedback(
            "f1",
            "r",
            "a",
            meta(json!({"results": {"z": 3}, "summary": "no"})),
        ),
    );
    h.frame(
        1,
        &feedback("f2", "r", "a", meta(json!({"results": 5, "summary": "no"}))),
    );
    h.frame(1, &feedback("f3", "r", "a", meta(json!({"results": null}))));
    let n = h.s.run("r").unwrap().node("a").unwrap();
    assert_eq!(n.feedback_count, 3);
    assert_eq!(
        serde_json::Value::Object(n.partial_result.clone()),
        json!({"z": 3})
    );
    h.frame(
        1,
        &feedback("f4", "r", "a", meta(json!({"summary": {"k": [1]}}))),
    );
    let n = h.s.run("r").unwrap().node("a").unwrap();
    assert_eq!(
        serde_json::Value::Object(n.partial_result.clone()),
        json!({"z": 3, "summary": {"k": [1]}})
    );
}

#[test]
fn node_of_a_disconnected_worker_stays_running_and_accepts_a_late_result_elsewhere() {
    let mut h = H::default_cfg();
    let d = run_with(&mut h, RunSpec::new("r", vec![node("a")]));
    h.frame(1, &ack("k", &d[0].0));
    h.input(SchedInput::Disconnected(ConnId(1)));
    assert!(
        h.run_until(secs(60)).is_empty(),
        "no lease, no reassignment"
    );
    assert_eq!(h.s.run("r").unwrap().nodes[0].status, NodeStatus::Running);
    // The result arrives on a fresh, never-handshaken connection.
    h.connect(2);
    let out = h.frame(2, &result("x", "r", "a", "SUCCEEDED"));
    assert_eq!(
        finished(&out),
        vec![SchedEvent::RunFinished {
            run_id: "r".into(),
            status: RunStatus::Succeeded
        }]
    );
}

#[test]
fn ack_timeout_after_the_result_reopens_the_finished_node() {
    let mut h = H::default_cfg();
    run_with(&mut h, RunSpec::new("r", vec![node("a")]));
    // The result arrives but the ack never did (e.g. lost to the race).
    let out = h.frame(1, &result("x", "r", "a", "SUCCEEDED"));
    assert_eq!(finished(&out).len(), 1);
    let out = h.run_until(secs(6));
    assert_eq!(dispatches(&out).len(), 1, "the finished node is sent again");
    let run = h.s.run("r").unwrap();
    assert_eq!(
        (run.nodes[0].status, run.status),
        (NodeStatus::Running, RunStatus::Running)
    );
    let out = h.frame(1, &result("y", "r", "a", "SUCCEEDED"));
    assert!(finished(&out).is_empty(), "RunFinished is announced once");
    assert_eq!(h.s.run("r").unwrap().status, RunStatus::Succeeded);
}

#[test]
fn refused_runs_are_reported_not_created() {
    let mut h = H::default_cfg();
    h.submit(RunSpec::new("r", vec![node("a")]));
    let out = h.submit(RunSpec::new("r", vec![node("a")]));
    assert_eq!(
        events(&out),
        vec![SchedEvent::RunRejected {
            run_id: "r".into(),
            error: SubmitError::DuplicateRun("r".into())
        }]
    );
    let out = h.submit(RunSpec::new("c", vec![node("a").after("a")]));
    assert!(matches!(
        events(&out).as_slice(),
        [SchedEvent::RunRejected {
            error: SubmitError::Cycle(_),
            ..
        }]
    ));
    assert_eq!(h.s.runs().len(), 1);
}
