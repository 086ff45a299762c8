//! The tokenizer of a GGUF file, built from its `tokenizer.ggml.*` metadata so that token
//! ids equal llama.cpp's for the same file (checked against llama.cpp ids in
//! `tests/ai_llm.rs`).
//!
//! Supported: `tokenizer.ggml.model = gpt2` (byte-level BPE) with the pre-tokenizers that
//! llama.cpp splits with "single digits, then the GPT-2 pattern" (`smollm`, `starcoder`,
//! `refact`, `command-r`, `codeshell`, `exaone`, `minerva`): that is the Hugging Face
//! `Digits(individual) + ByteLevel` pipeline. Control tokens (type 3, e.g. `<|im_start|>`)
//! are matched in the text only when special parsing is asked for, as llama.cpp's
//! `parse_special`; user-defined tokens (type 4) always are.

use candle_core::quantized::gguf_file::{Content, Value};
use std::collections::HashSet;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// llama.cpp's pre-tokenizer names that split like SmolLM2 (see the module docs).
pub const SUPPORTED_PRE: [&str; 7] = [
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva",
];

/// Token types of `tokenizer.ggml.token_type` (llama.cpp `llama_token_type`).
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

/// End-of-generation tokens llama.cpp recognises by their text besides the eos id.
const EOG_TEXTS: [&str; 7] = [
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
];

pub struct GgufTokenizer {
    /// Control tokens are matched (llama.cpp `parse_special = true`).
    special: Tokenizer,
    /// Control tokens are plain text.
    plain: Tokenizer,
    /// Each token's bytes as generated text; control tokens render as nothing.
    pieces: Vec<Vec<u8>>,
    tokens: Vec<String>,
    eog: HashSet<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
}

fn md<'a>(ct: &'a Content, key: &str) -> Result<&'a Value, String> {
    ct.metadata
        .get(key)
        .ok_or_else(|| format!("metadata key {key} is missing"))
}

fn md_u32(ct: &Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(|v| match v {
        Value::U32(n) => Some(*n),
        Value::I32(n) if *n >= 0 => Some(*n as u32),
        Value::U64(n) => u32::try_from(*n).ok(),
        Value::I64(n) => u32::try_from(*n).ok(),
        _ => None,
    })
}

fn strings(ct: &Content, key: &str) -> Result<Vec<String>, String> {
    md(ct, key)?
        .to_vec()
        .map_err(|e| format!("{key}: {e}"))?
        .iter()
        .map(|v| v.to_string().cloned().map_err(|e| format!("{key}: {e}")))
        .collect()
}

/// GPT-2's byte → printable char table, inverted: char → byte.
fn unicode_to_byte() -> std::collections::HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..=255u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    printable
        .iter()
        .zip(chars)
        .filter_map(|(&b, c)| char::from_u32(c).map(|c| (c, b as u8)))
        .collect()
}

impl GgufTokenizer {
    pub fn from_gguf(ct: &Content) -> Result<GgufTokenizer, String> {
        let model = md(ct, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| e.to_string())?;
        if model != "gpt2" {
            return Err(format!(
                "tokenizer.ggml.model = {model:?}; only byte-level BPE (\"gpt2\") is supported"
            ));
        }
        let pre = ct
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "default".into());
        if !SUPPORTED_PRE.contains(&pre.as_str()) {
            return Err(format!(
                "tokenizer.ggml.pre = {pre:?} is not supported; supported: {}",
                SUPPORTED_PRE.join(", ")
            ));
        }
        let tokens = strings(ct, "tokenizer.ggml.tokens")?;
        let merges_raw = strings(ct, "tokenizer.ggml.merges")?;
        let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(|e| e.to_string())?
                .iter()
                .map(|t| {
                    t.to_i32()
                        .map_err(|e| format!("tokenizer.ggml.token_type: {e}"))
                })
                .collect::<Result<_, _>>()?,
            None => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(format!(
                "tokenizer.ggml.token_type has {} entries for {} tokens",
                types.len(),
                tokens.len()
            ));
        }
        let mut merges = Vec::with_capacity(merges_raw.len());
        for (i, m) in merges_raw.iter().enumerate() {
            // Byte-level tokens never hold a real space (it maps to `Ġ`), so one separates.
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| format!("tokenizer.ggml.merges[{i}] = {m:?} is not \"a b\""))?;
            merges.push((a.to_string(), b.to_string()));
        }
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| format!("cannot build the BPE model: {e}"))?;
        let mut tk = Tokenizer::new(bpe);
        tk.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, false, true).into(),
        ])));
        let added: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == TYPE_CONTROL || t == TYPE_USER_DEFINED)
            .map(|(s, &t)| AddedToken::from(s.clone(), t == TYPE_CONTROL).normalized(false))
            .collect();
        tk.add_special_tokens(added)
            .map_err(|e| format!("cannot add the control tokens: {e}"))?;
        let mut plain = tk.clone();
        plain.set_encode_special_tokens(true);

        let to_byte = unicode_to_byte();
        let pieces = tokens
            .iter()
            .zip(&types)
            .map(|(t, &ty)| match ty {
                TYPE_CONTROL => Vec::new(),
                TYPE_USER_DEFINED => t.as_bytes().to_vec(),
                _ => t
                    .chars()
                    .flat_map(|c| match to_byte.get(&c) {
                        Some(&b) => vec![b],
                        // Not a byte-level char: keep it as its UTF-8.
                        None => c.to_string().into_bytes(),
                    })
                    .collect(),
            })
            .collect();
        let eos = md_u32(ct, "tokenizer.ggml.eos_token_id");
        let mut eog: HashSet<u32> = eos.into_iter().collect();
        if let Some(eot) = md_u32(ct, "tokenizer.ggml.eot_token_id") {
            eog.insert(eot);
        }
        for (i, (t, &ty)) in tokens.iter().zip(&types).enumerate() {
            if ty == TYPE_CONTROL && EOG_TEXTS.contains(&t.as_str()) {
                eog.insert(i as u32);
            }
        }
        let add_bos = ct
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        Ok(GgufTokenizer {
            special: tk,
            plain,
            pieces,
            tokens,
            eog,
            bos: md_u32(ct, "tokenizer.ggml.bos_token_id"),
            eos,
            add_bos,
        })
    }

    /// Token ids of `text`, with the model's BOS when it asks for one (llama.cpp
    /// `llama_tokenize(add_special = true)`). `parse_special`: match control tokens.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, String> {
        let tk = if parse_special {
            &self.special
        } else {
            &self.plain
        };
        let enc = tk.encode(text, false).map_err(|e| e.to_string())?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.add_bos {
            if let Some(b) = self.bos {
                ids.push(b);
            }
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// The bytes token `id` adds to generated text (empty for control tokens).
    pub fn piece(&self, id: u32) -> &[u8] {
        self.pieces.get(id as usize).map_or(&[], |p| p.as_slice())
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    fn token_text(&self, id: Option<u32>) -> String {
        id.and_then(|i| self.tokens.get(i as usize))
            .cloned()
            .unwrap_or_default()
    }

    pub fn bos_text(&self) -> String {
        self.token_text(self.bos)
    }

    pub fn eos_text(&self) -> String {
        self.token_text(self.eos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_table_covers_every_byte_once() {
        let t = unicode_to_byte();
        assert_eq!(t.len(), 256);
        let bytes: HashSet<u8> = t.values().copied().collect();
        assert_eq!(bytes.len(), 256);
        assert_eq!(t[&'Ġ'], b' ');
        assert_eq!(t[&'Ċ'], b'\n');
        assert_eq!(t[&'a'], b'a');
    }
}
