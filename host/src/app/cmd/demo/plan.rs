//! The demo's sample workload: runs of builtin tasks (echo, a feedback stream, two sleeps in
//! parallel, a join) and one run that fails on purpose, each with the status it must reach.

use crate::runner::{BUILTIN_PACKAGE, BUILTIN_VERSION};
use astra_core::scheduler::{NodeSpec, RunSpec, RunStatus};
use serde_json::json;

pub(super) fn runs(n: u32) -> Vec<(RunSpec, RunStatus)> {
    let p = BUILTIN_PACKAGE;
    let v = BUILTIN_VERSION;
    let mut out = Vec::new();
    for i in 1..=n {
        let nodes = vec![
            NodeSpec::new("greet", "echo", p, v)
                .param("message", json!(format!("hello from run {i}"))),
            NodeSpec::new("stream", "stream", p, v)
                .after("greet")
                .param("count", json!(5))
                .param("interval_ms", json!(20))
                .param("text", json!("tokens flow as feedback frames")),
            NodeSpec::new("nap-a", "sleep", p, v)
                .after("greet")
                .param("ms", json!(150)),
            NodeSpec::new("nap-b", "sleep", p, v)
                .after("greet")
                .param("ms", json!(150)),
            NodeSpec::new("join", "echo", p, v)
                .after("stream")
                .after("nap-a")
                .after("nap-b")
                .param("done", json!(true)),
        ];
        out.push((
            RunSpec::new(&format!("demo-run-{i}"), nodes),
            RunStatus::Succeeded,
        ));
    }
    let failing = vec![NodeSpec::new("boom", "fail", p, v)
        .param("mode", json!("status"))
        .param("message", json!("this task fails on purpose"))];
    out.push((
        RunSpec::new("demo-expected-failure", failing),
        RunStatus::Failed,
    ));
    out
}
