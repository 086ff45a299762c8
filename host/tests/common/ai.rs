//! What the model-backed `ai` integration tests share: where `scripts/fetch-test-models` put
//! the test models (failing loudly when they are missing: these tests are never skipped),
//! a task context like the runner's, and handler lookup by node type.

#![allow(dead_code)] // each test file uses its own part

use astra_core::work::TaskKey;
use astra_host::runner::{CancelToken, ExecutionContext, FeedbackHandle, Handler};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `$ASTRA_TEST_MODELS`, default `~/.cache/astra-test-models`.
pub fn models_root() -> PathBuf {
    std::env::var_os("ASTRA_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/astra-test-models")
        })
}

/// `<models root>/<model>`, asserting each of `files` is there.
pub fn test_model(model: &str, files: &[&str]) -> PathBuf {
    let dir = models_root().join(model);
    for f in files {
        assert!(
            dir.join(f).is_file(),
            "test model file {} is missing: run scripts/fetch-test-models (or set ASTRA_TEST_MODELS to where it put the models)",
            dir.join(f).display()
        );
    }
    dir
}

/// The all-MiniLM-L6-v2 files the embedding tests load.
pub fn minilm_files() -> PathBuf {
    test_model(
        "all-MiniLM-L6-v2",
        &["config.json", "tokenizer.json", "model.safetensors"],
    )
}

/// A task of run `run-1` with its data dir under `tmp`, as the runner would build it.
pub fn task_ctx(
    task: &str,
    node_type: &str,
    params: Value,
    tmp: &Path,
    deadline: Duration,
    feedback: impl FnOnce(TaskKey) -> FeedbackHandle,
) -> ExecutionContext {
    let data_dir = tmp.join("tasks/run-1").join(task);
    std::fs::create_dir_all(&data_dir).unwrap();
    let key = TaskKey {
        run_id: "run-1".into(),
        task_id: task.into(),
    };
    ExecutionContext {
        run_id: key.run_id.clone(),
        task_id: key.task_id.clone(),
        node_id: task.into(),
        node_type: node_type.into(),
        package_name: "astra.builtin".into(),
        package_version: "0".into(),
        params: params.as_object().cloned().unwrap_or_default(),
        tenant: "default".into(),
        worker_id: "w1".into(),
        data_dir,
        metadata: Map::new(),
        cancel: CancelToken::new(),
        deadline: Instant::now() + deadline,
        feedback: feedback(key),
    }
}

/// The handler registered for `name`.
pub fn handler(handlers: &[(String, Arc<dyn Handler>)], name: &str) -> Arc<dyn Handler> {
    handlers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, h)| h.clone())
        .expect(name)
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}
