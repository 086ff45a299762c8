//! Test helpers: an `ExecutionContext` for calling executors directly.

use crate::runner::{CancelToken, ExecutionContext, FeedbackHandle};
use astra_core::work::TaskKey;
use serde_json::{Map, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// A context for `node_type` with `params` (a JSON object), its data dir under `root`.
pub fn ctx(node_type: &str, params: Value, root: &Path) -> ExecutionContext {
    let data_dir = crate::runner::datadir::create_task_dir(&root.join("tasks"), "run-1", "task-1")
        .expect("create task dir");
    ExecutionContext {
        run_id: "run-1".into(),
        task_id: "task-1".into(),
        node_id: "n1".into(),
        node_type: node_type.into(),
        package_name: "astra.builtin".into(),
        package_version: "0".into(),
        params: match params {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        tenant: "default".into(),
        worker_id: "w1".into(),
        data_dir,
        metadata: Map::new(),
        cancel: CancelToken::new(),
        deadline: Instant::now() + Duration::from_secs(60),
        feedback: FeedbackHandle::discard(TaskKey {
            run_id: "run-1".into(),
            task_id: "task-1".into(),
        }),
    }
}
