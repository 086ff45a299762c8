//! Debug tool for greedy parity: runs our llama forward pass over a prompt and a token
//! sequence one token at a time (as greedy decoding does) and compares each step's logits
//! with llama.cpp's, dumped as raw f32 rows (`steps x vocab`) by the caller.
//!
//!     llm_logits_diff MODEL.gguf IDS.json REF.f32
//!
//! IDS.json: `{"prompt": [...], "toks": [...]}`; REF.f32 holds `toks.len() + 1` rows.
//! scripts/llm-step-logits.py writes both from llama.cpp (llama-cpp-python).

use astra_host::ai::llm::model::{Model, Weights};
use candle_core::quantized::gguf_file::Content;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let [_, model, ids, refp] = &a[..] else {
        return Err("usage: llm_logits_diff MODEL.gguf IDS.json REF.f32".into());
    };
    let mut f = std::fs::File::open(model)?;
    let ct = Content::read(&mut f)?;
    let mut m = Model::new(Weights::read(&ct, &mut f)?);
    let ids: serde_json::Value = serde_json::from_slice(&std::fs::read(ids)?)?;
    let list = |k: &str| -> Vec<u32> {
        ids[k]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_u64())
                    .map(|x| x as u32)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (prompt, toks) = (list("prompt"), list("toks"));
    let raw = std::fs::read(refp)?;
    let r: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let vocab = r.len() / (toks.len() + 1);
    let top2 = |l: &[f32]| {
        let mut o: Vec<usize> = (0..l.len()).collect();
        o.sort_by(|&i, &j| l[j].total_cmp(&l[i]).then(i.cmp(&j)));
        (o[0], o[1], l[o[0]] - l[o[1]])
    };
    let (mut tot, mut n) = (0f64, 0usize);
    let mut gmax = 0f32;
    for s in 0..=toks.len() {
        let ours = if s == 0 {
            m.forward(&prompt, 0)?
        } else {
            m.forward(&toks[s - 1..s], prompt.len() + s - 1)?
        };
        let re = &r[s * vocab..(s + 1) * vocab];
        let d: Vec<f32> = ours.iter().zip(re).map(|(a, b)| (a - b).abs()).collect();
        let mean = d.iter().map(|&x| x as f64).sum::<f64>() / vocab as f64;
        let max = d.iter().fold(0f32, |a, &b| a.max(b));
        let same = ours
            .iter()
            .zip(re)
            .filter(|(a, b)| a.to_bits() == b.to_bits())
            .count();
        tot += mean;
        n += 1;
        gmax = gmax.max(max);
        let (o, p) = (top2(&ours), top2(re));
        println!(
            "step {s:2}: mean {mean:.4} max {max:.4} bit-equal {same}/{vocab}  ours {} {} m {:.4}  llama {} {} m {:.4}{}",
            o.0,
            o.1,
            o.2,
            p.0,
            p.1,
            p.2,
            if o.0 != p.0 { "  <-- DIFF" } else { "" }
        );
    }
    println!("overall mean {:.4} max {gmax:.4}", tot / n as f64);
    Ok(())
}
