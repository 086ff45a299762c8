//! The real test model (from `scripts/fetch-test-models`) pulled by the `model_download`
//! executor from the mock hub into the hub cache layout, then loaded OFFLINE by the
//! `embedding` executor through the production resolution (hub layout first): the vectors
//! equal sentence-transformers' reference. FAILS, saying so, when the model is missing.
#![cfg(feature = "ai")]

mod common;

#[path = "../src/ai/hub/mock.rs"]
mod mock;

use astra_host::ai::embed::DEFAULT_EMBEDDING_MODEL;
use astra_host::ai::{builtin_handlers, AiSettings};
use astra_host::runner::{ExecutionContext, FeedbackHandle};
use common::ai::{cosine, handler, minilm_files};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn ctx(task: &str, node_type: &str, params: Value, tmp: &Path) -> ExecutionContext {
    common::ai::task_ctx(
        task,
        node_type,
        params,
        tmp,
        Duration::from_secs(300),
        FeedbackHandle::discard,
    )
}

#[test]
fn downloaded_model_loads_offline_from_the_hub_layout() {
    let tmp = tempfile::tempdir().unwrap();
    // The hub serves the fetched test model as sentence-transformers/all-MiniLM-L6-v2.
    let hub_root = tmp.path().join("hub");
    let (org, name) = DEFAULT_EMBEDDING_MODEL.split_once('/').unwrap();
    std::fs::create_dir_all(hub_root.join(org)).unwrap();
    std::os::unix::fs::symlink(minilm_files(), hub_root.join(org).join(name)).unwrap();
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
