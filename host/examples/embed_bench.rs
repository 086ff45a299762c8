//! One side of `bench/embed.sh`: loads the embedding model through the production path
//! (`Embedder`, the executor's model thread) with N compute threads, times batch 1 and
//! batch 32 over the given sentences, and prints one JSON line with the figures and the
//! process's peak RSS (VmHWM).
//!
//! cargo run --release -p astra-host --features ai --example embed_bench -- MODEL_DIR THREADS SENTENCES_JSON

use astra_host::ai::embed::Embedder;
use astra_host::runner::CancelToken;
use std::time::Instant;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, threads, sentences] = args.as_slice() else {
        return Err("usage: embed_bench MODEL_DIR THREADS SENTENCES_JSON".into());
    };
    let threads: usize = threads.parse()?;
    let sentences: Vec<String> = serde_json::from_str(&std::fs::read_to_string(sentences)?)?;
    let t = Instant::now();
    let e = Embedder::start("bench", std::path::Path::new(dir), threads)?;
    let load_s = t.elapsed().as_secs_f64();
    let cancel = CancelToken::new();
    e.embed(sentences[..8.min(sentences.len())].to_vec(), 8, &cancel)?; // warm-up
    let mut rates = Vec::new();
    for batch in [1usize, 32] {
        let n = if batch == 1 {
            64.min(sentences.len())
        } else {
            sentences.len()
        };
        let t = Instant::now();
        e.embed(sentences[..n].to_vec(), batch, &cancel)?;
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({"impl": "candle", "threads": threads, "load_s": load_s,
            "batch1_sps": rates[0], "batch32_sps": rates[1], "peak_rss_mib": peak_rss_kib() as f64 / 1024.0})
    );
    Ok(())
}
