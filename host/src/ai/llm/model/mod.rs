//! Our own llama forward pass over a GGUF's raw ggml blocks, written to follow llama.cpp's
//! numerics (Q8_1/Q8_0 activation quantization, integer block dot products, the same f32
//! accumulation order) and speed (AVX2 kernels, with `vpdpbusd` where AVX512-VNNI exists,
//! chosen at run time over weights regrouped four rows at a time; rows split over the
//! `ai_threads` pool). candle only parses the file ([`weights`]); it computes nothing here.
//!
//! - [`blocks`]: the ggml block formats and activation quantizers;
//! - [`q4_1`], [`q8_0`]: the dot-product kernels (VNNI, AVX2 and scalar, bit-identical);
//! - [`matmul`]: a quantized matrix times activations, split over threads;
//! - [`math`]: the f32 ops between matmuls ([`fused`]: those that must round as ggml's
//!   AVX-512 code, portable and AVX2+FMA builds); [`forward`]: the pass and its KV cache.

pub mod blocks;
pub mod forward;
pub mod fused;
pub mod math;
pub mod matmul;
pub mod q4_1;
pub mod q8_0;
pub mod simd;
pub mod weights;

pub use forward::Model;
pub use weights::{Config, Weights};
