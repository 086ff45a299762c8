//! The llama weights read from a GGUF file as raw ggml blocks (no conversion, so the dot
//! products see exactly the values llama.cpp sees), and the hyper-parameters from its
//! metadata. Supported tensor types: F32 (norms), Q4_1 and Q8_0 (matrices): what the
//! SmolLM2 Q4_1 GGUF holds. Any other type is refused naming the tensor and its type.

use super::blocks::{BlockQ4_1, BlockQ8_0, Q4_1_BYTES, Q8_0_BYTES, QK};
use super::matmul::{Blocks, QMatrix};
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::GgmlDType;
use std::io::{Read, Seek, SeekFrom};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub head_dim: usize,
    pub rope_dim: usize,
    pub rope_base: f32,
    pub eps: f32,
    pub vocab: usize,
}

pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: QMatrix,
    pub wk: QMatrix,
    pub wv: QMatrix,
    pub wo: QMatrix,
    pub ffn_norm: Vec<f32>,
    pub gate: QMatrix,
    pub up: QMatrix,
    pub down: QMatrix,
}

pub struct Weights {
    pub cfg: Config,
    /// `token_embd.weight`: rows are token embeddings.
    pub embd: QMatrix,
    pub layers: Vec<Layer>,
    pub output_norm: Vec<f32>,
    /// `output.weight`, or `None` when the output layer is tied to the embeddings.
    pub output: Option<QMatrix>,
}

impl Weights {
    pub fn output(&self) -> &QMatrix {
        self.output.as_ref().unwrap_or(&self.embd)
    }
}

struct Reader<'a, R> {
    ct: &'a Content,
    file: &'a mut R,
}

impl<R: Read + Seek> Reader<'_, R> {
    fn bytes(&mut self, name: &str) -> Result<(GgmlDType, Vec<usize>, Vec<u8>), String> {
        let info = self
            .ct
            .tensor_infos
            .get(name)
            .ok_or_else(|| format!("tensor {name} is missing"))?;
        let dims = info.shape.dims().to_vec();
        let n: usize = dims.iter().product();
        let size = match info.ggml_dtype {
            GgmlDType::F32 => n * 4,
            GgmlDType::Q4_1 if n.is_multiple_of(QK) => n / QK * Q4_1_BYTES,
            GgmlDType::Q8_0 if n.is_multiple_of(QK) => n / QK * Q8_0_BYTES,
            t => {
                return Err(format!(
                    "tensor {name} has ggml type {t:?} (shape {dims:?}); this backend reads only F32, Q4_1 and Q8_0 tensors: use a Q4_1 or Q8_0 GGUF"
                ))
            }
        };
        let mut buf = vec![0u8; size];
        self.file
            .seek(SeekFrom::Start(self.ct.tensor_data_offset + info.offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| format!("cannot read tensor {name}: {e}"))?;
        Ok((info.ggml_dtype, dims, buf))
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>, String> {
        let (t, dims, b) = self.bytes(name)?;
        if t != GgmlDType::F32 || dims.iter().product::<usize>() != len {
            return Err(format!(
                "tensor {name} is {t:?} {dims:?}; expected F32 with {len} values"
            ));
        }
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// A matrix of `rows` rows of `cols` values (candle lists GGUF dims outermost first).
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<QMatrix, String> {
        let (t, dims, b) = self.bytes(name)?;
        if dims != [rows, cols] {
            return Err(format!(
                "tensor {name} has shape {dims:?}; expected [{rows}, {cols}] from the metadata"
            ));
        }
        if !cols.is_multiple_of(QK) {
            return Err(format!(
                "tensor {name}: rows of {cols} values are not whole 32-value blocks"
            ));
        }
        let blocks = match t {
            GgmlDType::Q4_1 => Blocks::Q4_1(
                b.chunks_exact(Q4_1_BYTES)
                    .map(BlockQ4_1::from_bytes)
                    .collect(),
            ),
            GgmlDType::Q8_0 => Blocks::Q8_0(
                b.chunks_exact(Q8_0_BYTES)
                    .map(BlockQ8_0::from_bytes)
                    .collect(),
            ),
            t => {
                return Err(format!(
                    "tensor {name} has ggml type {t:?}; matrices must be Q4_1 or Q8_0"
                ))
            }
        };
        Ok(QMatrix::new(rows, cols, blocks))
    }
}

fn meta_u32(ct: &Content, key: &str) -> Result<usize, String> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_u32().ok())
        .map(|v| v as usize)
        .ok_or_else(|| format!("metadata {key} is missing or not an integer"))
}

fn meta_f32(ct: &Content, key: &str) -> Option<f32> {
    ct.metadata.get(key).and_then(|v| v.to_f32().ok())
}

pub fn config(ct: &Content) -> Result<Config, String> {
    let n_embd = meta_u32(ct, "llama.embedding_length")?;
    let n_head = meta_u32(ct, "llama.attention.head_count")?;
    let n_head_kv = meta_u32(ct, "llama.attention.head_count_kv").unwrap_or(n_head);
    if n_head == 0 || n_embd % n_head != 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
        return Err(format!(
            "metadata: {n_head} heads / {n_head_kv} kv heads do not divide the {n_embd}-wide embedding"
        ));
    }
    let head_dim = n_embd / n_head;
    let rope_dim = meta_u32(ct, "llama.rope.dimension_count").unwrap_or(head_dim);
    if rope_dim > head_dim || !rope_dim.is_multiple_of(2) {
        return Err(format!(
            "metadata llama.rope.dimension_count = {rope_dim} must be even and at most the head size {head_dim}"
        ));
    }
    let vocab = ct
        .tensor_infos
        .get("token_embd.weight")
        .map(|t| t.shape.dims()[0])
        .ok_or("tensor token_embd.weight is missing")?;
    Ok(Config {
        n_embd,
        n_layer: meta_u32(ct, "llama.block_count")?,
        n_head,
        n_head_kv,
        n_ff: meta_u32(ct, "llama.feed_forward_length")?,
        head_dim,
        rope_dim,
        rope_base: meta_f32(ct, "llama.rope.freq_base").unwrap_or(10000.0),
        eps: meta_f32(ct, "llama.attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
        vocab,
    })
}

impl Weights {
    pub fn read<R: Read + Seek>(ct: &Content, file: &mut R) -> Result<Weights, String> {
        let cfg = config(ct)?;
        let mut r = Reader { ct, file };
        let (e, kv, ff) = (cfg.n_embd, cfg.n_head_kv * cfg.head_dim, cfg.n_ff);
        let embd = r.matrix("token_embd.weight", cfg.vocab, e)?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: r.vector(&p("attn_norm"), e)?,
                wq: r.matrix(&p("attn_q"), e, e)?,
                wk: r.matrix(&p("attn_k"), kv, e)?,
                wv: r.matrix(&p("attn_v"), kv, e)?,
                wo: r.matrix(&p("attn_output"), e, e)?,
                ffn_norm: r.vector(&p("ffn_norm"), e)?,
                gate: r.matrix(&p("ffn_gate"), ff, e)?,
                up: r.matrix(&p("ffn_up"), ff, e)?,
                down: r.matrix(&p("ffn_down"), e, ff)?,
            });
        }
        let output_norm = r.vector("output_norm.weight", e)?;
        let output = if ct.tensor_infos.contains_key("output.weight") {
            Some(r.matrix("output.weight", cfg.vocab, e)?)
        } else {
            None
        };
        Ok(Weights {
            cfg,
            embd,
            layers,
            output_norm,
            output,
        })
    }
}
