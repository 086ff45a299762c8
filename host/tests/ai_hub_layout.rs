//! The real test model (from `scripts/fetch-test-models`) pulled by the `model_download`
//! executor from the mock hub into the hub cache layout, then loaded OFFLINE by the
//! `embedding` executor through the production resolution (hub layout first): the vectors
//! equal sentence-transformers' reference. FAILS, saying so, when the model is missing.
#![cfg(feature = "ai")]

#[path = "../src/ai/hub/mock.rs"]
mod mock;

use astra_core::work::TaskKey;
use astra_host::ai::embed::DEFAULT_EMBEDDING_MODEL;
use astra_host::ai::{builtin_handlers, AiSettings};
use astra_host::runner::{CancelToken, ExecutionContext, FeedbackHandle, Handler};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn model_files() -> PathBuf {
    let root = std::env::var_os("ASTRA_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/astra-test-models")
        });
    let dir = root.join("all-MiniLM-L6-v2");
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(
            dir.join(f).is_file(),
            "test model file {} is missing: run scripts/fetch-test-models (or set ASTRA_TEST_MODELS to where it put the models)",
            dir.join(f).display()
        );
    }
    dir
}

fn ctx(task: &str, node_type: &str, params: Value, tmp: &Path) -> ExecutionContext {
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
        deadline: Instant::now() + Duration::from_secs(300),
        feedback: FeedbackHandle::discard(key),
    }
}

fn handler(hs: &[(String, Arc<dyn Handler>)], name: &str) -> Arc<dyn Handler> {
    hs.iter()
        .find(|(n, _)| n == name)
        .map(|(_, h)| h.clone())
        .expect(name)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn downloaded_model_loads_offline_from_the_hub_layout() {
    let tmp = tempfile::tempdir().unwrap();
    // The hub serves the fetched test model as sentence-transformers/all-MiniLM-L6-v2.
    let hub_root = tmp.path().join("hub");
    let (org, name) = DEFAULT_EMBEDDING_MODEL.split_once('/').unwrap();
    std::fs::create_dir_all(hub_root.join(org)).unwrap();
    std::os::unix::fs::symlink(model_files(), hub_root.join(org).join(name)).unwrap();
    let hub = mock::MockHub::start(&hub_root);
    let settings = AiSettings {
        artifact_root: tmp.path().join("artifacts"),
        model_cache_dir: tmp.path().join("models"),
        hub_endpoint: hub.url.clone(),
        threads: 2,
        ..AiSettings::default()
    };
    let hs = builtin_handlers(&settings, None);

    let out = handler(&hs, "model_download")
        .run(&ctx(
            "d1",
            "model_download",
            json!({"model": DEFAULT_EMBEDDING_MODEL,
                   "files": ["config.json", "tokenizer.json", "model.safetensors"]}),
            tmp.path(),
        ))
        .unwrap();
    let snapshot = PathBuf::from(out["outputs"]["model_path"].as_str().unwrap());
    assert_eq!(
        snapshot,
        tmp.path()
            .join("models/models--sentence-transformers--all-MiniLM-L6-v2/snapshots")
            .join(mock::COMMIT)
    );
    let served = hub.requests().len();
    drop(hub); // From here on there is no hub: loading must be offline.

    let fx: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai/minilm-reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let sentence = fx["sentences"][0].as_str().unwrap();
    let want: Vec<f32> = serde_json::from_value(fx["vectors"][0].clone()).unwrap();
    let out = handler(&hs, "embedding")
        .run(&ctx(
            "e1",
            "embedding",
            json!({ "text": sentence }),
            tmp.path(),
        ))
        .unwrap();
    let got: Vec<f32> = serde_json::from_value(out["outputs"]["vector"].clone()).unwrap();
    let c = cosine(&got, &want);
    assert!(c >= 0.999, "cosine {c} vs sentence-transformers");
    assert!(served > 0);
}
