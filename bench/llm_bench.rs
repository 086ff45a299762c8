//! The candle side of `bench/llm.sh`: loads a GGUF with the `llm_inference` backend, then
//! times prompt processing (one forward pass over the prompt) and greedy decoding (one
//! forward pass per token, KV cache on), and prints one JSON line. The compute threads are
//! a pool of `--threads` threads, as the worker builds one of `ai_threads` per model.
//!
//!     cargo run --release -p astra-host --features ai --example llm_bench -- \
//!         --model PATH.gguf [--threads 1] [--gen 128] [--runs 3]

use astra_host::ai::llm::generate::Backend;
use astra_host::ai::llm::sampler::argmax;
use astra_host::ai::llm::GgufModel;
use std::path::PathBuf;
use std::time::Instant;

/// The same prompt text as bench/llm_bench.py (ChatML, about 120 tokens).
pub const PROMPT: &str = include_str!("llm_prompt.txt");

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let mut model: Option<PathBuf> = None;
    let (mut gen, mut runs, mut threads) = (128usize, 3usize, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(val())),
            "--gen" => gen = val().parse().expect("--gen N"),
            "--runs" => runs = val().parse().expect("--runs N"),
            "--threads" => threads = val().parse().expect("--threads N"),
            other => panic!(
                "unknown argument {other}; use --model PATH [--threads N] [--gen N] [--runs N]"
            ),
        }
    }
    let model = model.expect("--model PATH.gguf");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("compute pool");
    pool.install(|| run(&model, gen, runs, threads));
}

fn run(model: &std::path::Path, gen: usize, runs: usize, threads: usize) {
    let started = Instant::now();
    let mut m = GgufModel::load("bench", model).expect("load");
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let ids = m.tokenizer().encode(PROMPT, true).expect("tokenize");
    let (mut best_pp, mut best_tg) = (0f64, 0f64);
    for _ in 0..runs {
        let t = Instant::now();
        let mut logits = m.forward(&ids, 0).expect("prompt");
        let pp = ids.len() as f64 / t.elapsed().as_secs_f64();
        let mut tok = argmax(&logits);
        let mut decode = 0f64;
        for i in 0..gen {
            let t = Instant::now();
            logits = m.forward(&[tok], ids.len() + i).expect("decode");
            decode += t.elapsed().as_secs_f64();
            tok = argmax(&logits);
        }
        best_pp = best_pp.max(pp);
        best_tg = best_tg.max(gen as f64 / decode);
    }
    println!(
        "{{\"engine\":\"astra\",\"threads\":{threads},\"avx2\":{},\"load_ms\":{load_ms:.1},\"prompt_tokens\":{},\"gen_tokens\":{gen},\"prompt_tok_s\":{best_pp:.1},\"decode_tok_s\":{best_tg:.1},\"peak_rss_mib\":{:.1}}}",
        astra_host::ai::llm::model::simd::has_avx2(),
        ids.len(),
        peak_rss_kib() as f64 / 1024.0
    );
}
