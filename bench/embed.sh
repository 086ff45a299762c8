#!/usr/bin/env bash
# Embedding benchmark: candle (the `embedding` executor's model thread) vs
# sentence-transformers on PyTorch CPU, same model files (all-MiniLM-L6-v2 from
# scripts/fetch-test-models), same sentences, same machine, same thread count (1 and 2),
# in ONE run, printed side by side with ratios. Not part of the test suite.
#
#   bench/embed.sh                 # venv in ${ASTRA_BENCH_VENV:-$HOME/.cache/astra-bench-venv}
#   THREADS="1 2 4" ROUNDS=5 bench/embed.sh
#   BASELINE_BIN=/tmp/embed_bench_old bench/embed.sh   # also an older embed_bench build,
#                                                       # for before/after in the same run
#
# The Python peers (sentence-transformers, torch) are installed from PyPI into their own
# virtual environment on first use (torch from PyPI is large).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${ASTRA_BENCH_VENV:-$HOME/.cache/astra-bench-venv}"
THREADS="${THREADS:-1 2}"
export ASTRA_TEST_MODELS="${ASTRA_TEST_MODELS:-$HOME/.cache/astra-test-models}"
MODEL="$ASTRA_TEST_MODELS/all-MiniLM-L6-v2"

./scripts/fetch-test-models
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sentence_transformers, torch' 2>/dev/null; then
    echo "embed bench: installing sentence-transformers + torch into $VENV (once)"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet sentence-transformers torch
fi
cargo build --release --locked -p astra-host --features ai --example embed_bench
BIN="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/examples/embed_bench"

# 128 sentences: the reference fixture's sentences, repeated (same token lengths for both).
SENT="$(mktemp)"
"$PY" - "$SENT" <<'PYEOF'
import json, sys
fx = json.load(open("host/tests/fixtures/ai/minilm-reference.json"))
s = fx["sentences"]
json.dump([s[i % len(s)] for i in range(128)], open(sys.argv[1], "w"))
PYEOF

# Each round runs both sides back to back, alternating which goes first; the table gives
# the median of the rounds per side and the ratio of the medians (machines here are shared,
# so single runs swing by 2x).
ROUNDS="${ROUNDS:-3}"
RES="$(mktemp)"
trap 'rm -f "$SENT" "$RES"' EXIT
for t in $THREADS; do
    for r in $(seq 1 "$ROUNDS"); do
        run_c() { RAYON_NUM_THREADS=$t "$BIN" "$MODEL" "$t" "$SENT" >>"$RES"; }
        run_p() { OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t "$VENV/bin/python" bench/embed_peer.py "$MODEL" "$t" "$SENT" 2>/dev/null | tail -n1 >>"$RES"; }
        run_b() { [[ -z "${BASELINE_BIN:-}" ]] || RAYON_NUM_THREADS=$t "$BASELINE_BIN" "$MODEL" "$t" "$SENT" | sed 's/"impl":"candle"/"impl":"candle-baseline"/' >>"$RES"; }
        if (( r % 2 )); then run_b; run_c; run_p; else run_p; run_c; run_b; fi
    done
done
"$PY" - "$RES" "$ROUNDS" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"median of {sys.argv[2]} rounds per side")
print(f"{'threads':<8} {'impl':<22} {'batch1 s/s':>12} {'batch32 s/s':>12} {'load s':>10} {'peak RSS MiB':>13}")
keys = ("batch1_sps", "batch32_sps", "load_s", "peak_rss_mib")
for t in sorted({r["threads"] for r in rows}):
    med = {}
    for impl in ("candle-baseline", "candle", "sentence-transformers"):
        rs = [r for r in rows if r["threads"] == t and r["impl"] == impl]
        if not rs:
            continue
        med[impl] = {k: statistics.median(r[k] for r in rs) for k in keys}
        m = med[impl]
        print(f"{t:<8} {impl:<22} {m['batch1_sps']:12.1f} {m['batch32_sps']:12.1f} {m['load_s']:10.3f} {m['peak_rss_mib']:13.1f}")
    c, p = med["candle"], med["sentence-transformers"]
    print(f"{'':8} {'ratio candle/torch':<22} " + " ".join(f"{c[k]/p[k]:{w}.2f}" for k, w in zip(keys, (12, 12, 10, 13))))
    if "candle-baseline" in med:
        b = med["candle-baseline"]
        print(f"{'':8} {'ratio baseline/torch':<22} " + " ".join(f"{b[k]/p[k]:{w}.2f}" for k, w in zip(keys, (12, 12, 10, 13))))
PYEOF
