#!/usr/bin/env python3
"""The llama.cpp side of bench/llm.sh (llama-cpp-python): same GGUF, same prompt text
(bench/llm_prompt.txt), same measures as bench/llm_bench.rs — model load, one eval over the
prompt, then greedy decoding one token per eval with the KV cache — one JSON line out."""

import argparse
import json
import os
import resource
import time

import numpy as np
from llama_cpp import Llama

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--gen", type=int, default=128)
ap.add_argument("--runs", type=int, default=3)
a = ap.parse_args()

prompt = open(os.path.join(os.path.dirname(__file__), "llm_prompt.txt"), encoding="utf-8").read()
t = time.perf_counter()
llm = Llama(model_path=a.model, n_ctx=1024, n_batch=512, n_threads=a.threads,
            n_threads_batch=a.threads, verbose=False)
load_ms = (time.perf_counter() - t) * 1000
n_vocab = llm.n_vocab()
# llama.cpp keeps the logits of the batch's last token (llama-cpp-python's `scores` stays
# empty unless logits_all=True, which would copy every prompt row).
last = lambda: int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))))
ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
best_pp = best_tg = 0.0
for _ in range(a.runs):
    llm.reset()
    t = time.perf_counter()
    llm.eval(ids)
    pp = len(ids) / (time.perf_counter() - t)
    tok = last()
    decode = 0.0
    for _ in range(a.gen):
        t = time.perf_counter()
        llm.eval([tok])
        decode += time.perf_counter() - t
        tok = last()
    best_pp = max(best_pp, pp)
    best_tg = max(best_tg, a.gen / decode)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"engine": "llama.cpp", "load_ms": round(load_ms, 1), "prompt_tokens": len(ids),
                  "gen_tokens": a.gen, "prompt_tok_s": round(best_pp, 1),
                  "decode_tok_s": round(best_tg, 1), "peak_rss_mib": round(rss, 1)}))
