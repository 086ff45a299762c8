#!/usr/bin/env bash
# LLM inference: astra (the llm_inference backend) vs llama.cpp (llama-cpp-python) on the
# same GGUF, same prompt, same thread count, side by side in one run.
#
#   bench/llm.sh [THREADS...]        # default: 1 2
#
# Env: ASTRA_TEST_MODELS (where scripts/fetch-test-models put SmolLM2), LLM_BENCH_MODEL (a
# GGUF path, overrides it), ASTRA_BENCH_VENV (the virtualenv for llama-cpp-python, created
# and filled from PyPI on first use; default ~/.cache/astra-bench/venv-llama), GEN (decode
# tokens, default 128), RUNS (best of, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -gt 0 ]]; then THREADS=("$@"); else THREADS=(1 2); fi
MODELS="${ASTRA_TEST_MODELS:-$HOME/.cache/astra-test-models}"
MODEL="${LLM_BENCH_MODEL:-$MODELS/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf}"
VENV="${ASTRA_BENCH_VENV:-$HOME/.cache/astra-bench/venv-llama}"
GEN="${GEN:-128}"
RUNS="${RUNS:-3}"
LLAMA_CPP_PYTHON="llama-cpp-python==0.3.36"

if [[ ! -f "$MODEL" ]]; then
    echo "llm.sh: $MODEL is missing: run scripts/fetch-test-models" >&2
    exit 1
fi
if ! "$VENV/bin/python" -c "import llama_cpp, numpy" 2>/dev/null; then
    echo "llm.sh: installing $LLAMA_CPP_PYTHON into $VENV (compiles llama.cpp: 10+ minutes on 2 cores)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip cmake ninja
    PATH="$VENV/bin:$PATH" "$VENV/bin/pip" install --quiet "$LLAMA_CPP_PYTHON" numpy
fi
cargo build --quiet --release -p astra-host --features ai --example llm_bench
BIN="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/examples/llm_bench"

echo "model: $MODEL"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "llama-cpp-python $("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)'), decode $GEN tokens, best of $RUNS"
printf '%-8s %-10s %8s %10s %10s %9s %9s\n' threads engine load_ms prompt_t/s decode_t/s rss_MiB prompt_tok
for t in "${THREADS[@]}"; do
    c=$("$BIN" --model "$MODEL" --threads "$t" --gen "$GEN" --runs "$RUNS")
    l=$(OMP_NUM_THREADS=$t "$VENV/bin/python" bench/llm_bench.py --model "$MODEL" --threads "$t" --gen "$GEN" --runs "$RUNS")
    python3 - "$t" "$c" "$l" <<'PY'
import json, sys
t, c, l = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
for r in (c, l):
    print(f"{t:<8} {r['engine']:<10} {r['load_ms']:>8.0f} {r['prompt_tok_s']:>10.1f} {r['decode_tok_s']:>10.1f} {r['peak_rss_mib']:>9.1f} {r['prompt_tokens']:>9}")
print(f"{t:<8} {'ratio':<10} {l['load_ms']/c['load_ms']:>7.2f}x {c['prompt_tok_s']/l['prompt_tok_s']:>9.2f}x {c['decode_tok_s']/l['decode_tok_s']:>9.2f}x {c['peak_rss_mib']/l['peak_rss_mib']:>8.2f}x   (astra/llama.cpp; load: llama.cpp/astra)")
PY
done
