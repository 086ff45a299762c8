//! Model-backed tests of the `embedding` and `retrieval` executors (feature `ai`).
//!
//! They need the all-MiniLM-L6-v2 files from `scripts/fetch-test-models` (in
//! `$ASTRA_TEST_MODELS`, default `~/.cache/astra-test-models`) and FAIL, saying so, when
//! the files are missing. Reference vectors: `fixtures/ai/minilm-reference.json`, made by
//! `scripts/make-embedding-fixture.py` with sentence-transformers.
//!
//! Throughput figures: `cargo test -p astra-host --features ai --release --test ai_embedding
//! -- --ignored --nocapture`.
#![cfg(feature = "ai")]

mod common;

use astra_host::ai::embed::{ModelCache, DEFAULT_EMBEDDING_MODEL};
use astra_host::ai::{builtin_handlers, AiSettings};
use astra_host::runner::{CancelToken, ExecutionContext, FeedbackHandle};
use common::ai::{cosine, handler, minilm_files};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// A model cache dir holding the test model under the default id, plus settings for it.
fn settings(tmp: &Path) -> AiSettings {
    let cache = tmp.join("models");
    let link = cache.join(DEFAULT_EMBEDDING_MODEL);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(minilm_files(), &link).unwrap();
    AiSettings {
        artifact_root: tmp.join("artifacts"),
        model_cache_dir: cache,
        index_dir: Some(tmp.join("index")),
        threads: 2,
        ..AiSettings::default()
    }
}

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

struct Fixture {
    sentences: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai/minilm-reference.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&path).expect("fixture")).unwrap();
    Fixture {
        sentences: serde_json::from_value(v["sentences"].clone()).unwrap(),
        vectors: serde_json::from_value(v["vectors"].clone()).unwrap(),
    }
}

#[test]
fn vectors_match_sentence_transformers_batched_and_single() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(&settings(tmp.path()));
    let fx = fixture();
    assert!(fx.sentences.len() >= 8);
    let cancel = CancelToken::new();
    let (batched, info) = cache
        .embed(DEFAULT_EMBEDDING_MODEL, fx.sentences.clone(), 32, &cancel)
        .unwrap();
    assert_eq!(info.dimension, 384);
    let (single, _) = cache
        .embed(DEFAULT_EMBEDDING_MODEL, fx.sentences.clone(), 1, &cancel)
        .unwrap();
    let mut worst = 1.0f32;
    for (i, want) in fx.vectors.iter().enumerate() {
        for (how, got) in [("batch 32", &batched[i]), ("batch 1", &single[i])] {
            let c = cosine(got, want);
            worst = worst.min(c);
            assert!(
                c >= 0.999,
                "sentence {i} ({how}): cosine {c} < 0.999 for {:?}",
                fx.sentences[i]
            );
            let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
        }
    }
    // Padding must not change a sentence's vector.
    for (a, b) in batched.iter().zip(&single) {
        assert!(cosine(a, b) > 0.99999);
    }
    eprintln!(
        "worst cosine vs sentence-transformers: {worst:.7}; model load {} ms",
        info.load_ms
    );
}

#[test]
fn embedding_executor_outputs_and_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let hs = builtin_handlers(&settings(tmp.path()), None);
    let h = handler(&hs, "embedding");
    let out = h
        .run(&ctx(
            "e1",
            "embedding",
            json!({"text": "hello world", "model": ""}),
            tmp.path(),
        ))
        .unwrap();
    let o = &out["outputs"];
    assert_eq!(o["backend"], "local");
    assert_eq!(o["model"], DEFAULT_EMBEDDING_MODEL);
    assert_eq!(o["dimension"], 384);
    assert_eq!(o["text_count"], 1);
    assert_eq!(o["vector"].as_array().unwrap().len(), 384);
    assert!(o["model_version"].as_str().unwrap().starts_with("sha256:"));
    let art = &out["artifacts"][0];
    assert_eq!(art["resource_id"], "artifact://run-1/e1/output.json");
    let file = tmp.path().join("artifacts/run-1/e1/output.json");
    assert_eq!(art["size_bytes"], std::fs::metadata(&file).unwrap().len());

    let out = h
        .run(&ctx(
            "e2",
            "embedding",
            json!({"texts_json": "[\"a\", \"b\", \" \"]"}),
            tmp.path(),
        ))
        .unwrap();
    assert_eq!(out["outputs"]["text_count"], 2);
    assert!(out["outputs"].get("vector").is_none());

    let e = h
        .run(&ctx(
            "e3",
            "embedding",
            json!({"text": "x", "embedding_model": "org/absent"}),
            tmp.path(),
        ))
        .unwrap_err();
    assert!(
        e.message.starts_with(
            "parameter `embedding_model`: embedding model org/absent is not installed"
        ),
        "{}",
        e.message
    );
    let e = h
        .run(&ctx(
            "e4",
            "embedding",
            json!({"text": "x", "embedding_model": "../../etc"}),
            tmp.path(),
        ))
        .unwrap_err();
    assert!(e.message.contains("is invalid"), "{}", e.message);
    let e = h
        .run(&ctx("e5", "embedding", json!({}), tmp.path()))
        .unwrap_err();
    assert!(
        e.message
            .contains("embedding requires non-empty text/prompt"),
        "{}",
        e.message
    );
}

#[test]
fn retrieval_persists_an_index_and_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let hs = builtin_handlers(&settings(tmp.path()), None);
    let h = handler(&hs, "retrieval");
    let docs = json!([
        {"id": "pw", "text": "To reset your password, open settings and choose 'forgot password'.", "metadata": {"tenant": "acme"}},
        {"id": "pw-other", "text": "Password resets are done from the account settings page.", "metadata": {"tenant": "globex"}},
        {"id": "fox", "text": "The quick brown fox jumps over the lazy dog.", "metadata": {"tenant": "acme"}},
        {"id": "paris", "text": "Paris is the capital of France.", "metadata": {"tenant": "acme"}}
    ]);
    let out = h
        .run(&ctx(
            "r1",
            "retrieval",
            json!({"index": "kb", "documents_json": docs.to_string()}),
            tmp.path(),
        ))
        .unwrap();
    assert_eq!(out["outputs"]["upserted"], 4);
    assert_eq!(out["outputs"]["index_size"], 4);
    assert_eq!(out["outputs"]["documents"], json!([]));

    // A later task queries what the first stored.
    let out = h
        .run(&ctx(
            "r2",
            "retrieval",
            json!({"index": "kb", "query": "how can I change my password?", "top_k": 2}),
            tmp.path(),
        ))
        .unwrap();
    let ids: Vec<&str> = out["outputs"]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"pw") && ids.contains(&"pw-other"), "{ids:?}");

    let out = h.run(&ctx("r3", "retrieval", json!({"index": "kb", "query": "how can I change my password?", "filters_json": "{\"tenant\": \"ACME\"}"}), tmp.path())).unwrap();
    let hits = out["outputs"]["documents"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["id"], "pw");
    assert!(hits
        .windows(2)
        .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()));

    // Inline documents without an index: SPLAI's behaviour.
    let out = h.run(&ctx("r4", "retrieval", json!({"query": "capital of France", "documents": "The fox is quick.\nParis is the capital of France."}), tmp.path())).unwrap();
    assert_eq!(out["outputs"]["documents"][0]["id"], "doc-2");

    let e = h
        .run(&ctx(
            "r5",
            "retrieval",
            json!({"index": "../x", "query": "q"}),
            tmp.path(),
        ))
        .unwrap_err();
    assert!(e.message.starts_with("parameter `index`"), "{}", e.message);
}

/// Throughput and load time; numbers only mean something in release mode.
#[test]
#[ignore]
fn throughput() {
    let tmp = tempfile::tempdir().unwrap();
    let threads: usize = std::env::var("ASTRA_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let s = AiSettings {
        threads,
        ..settings(tmp.path())
    };
    let cache = ModelCache::new(&s);
    let cancel = CancelToken::new();
    let t = Instant::now();
    cache.get(DEFAULT_EMBEDDING_MODEL).unwrap();
    let load = t.elapsed();
    let fx = fixture();
    let texts: Vec<String> = (0..128).map(|i| fx.sentences[i % 8].clone()).collect();
    cache
        .embed(DEFAULT_EMBEDDING_MODEL, texts[..8].to_vec(), 8, &cancel)
        .unwrap(); // warm-up
    for batch in [1usize, 32] {
        let n = if batch == 1 { 64 } else { 128 };
        let t = Instant::now();
        cache
            .embed(DEFAULT_EMBEDDING_MODEL, texts[..n].to_vec(), batch, &cancel)
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "threads {threads}, batch {batch}: {:.1} sentences/s ({:.2} ms/sentence)",
            n as f64 / secs,
            secs * 1000.0 / n as f64
        );
    }
    eprintln!(
        "model load (cold, incl. sha256 of weights): {} ms",
        load.as_millis()
    );
}
