#!/usr/bin/env bash
# Embedding benchmark: candle (the `embedding` executor's model thread) vs
# sentence-transformers on PyTorch CPU, same model files (all-MiniLM-L6-v2 from
# scripts/fetch-test-models), same sentences, same machine, same thread count (1 and 2),
# in ONE run, printed side by side with ratios. Not part of the test suite.
#
#   bench/embed.sh                 # venv in ${ASTRA_BENCH_VENV:-$HOME/.cache/astra-bench-venv}
#   THREADS="1 2 4" bench/embed.sh
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
BIN=target/release/examples/embed_bench

# 128 sentences: the reference fixture's sentences, repeated (same token lengths for both).
SENT="$(mktemp)"
trap 'rm -f "$SENT"' EXIT
"$PY" - "$SENT" <<'PYEOF'
import json, sys
fx = json.load(open("host/tests/fixtures/ai/minilm-reference.json"))
s = fx["sentences"]
json.dump([s[i % len(s)] for i in range(128)], open(sys.argv[1], "w"))
PYEOF

printf '%-8s %-22s %12s %12s %10s %12s\n' threads impl "batch1 s/s" "batch32 s/s" "load s" "peak RSS MiB"
for t in $THREADS; do
    c="$(RAYON_NUM_THREADS=$t "$BIN" "$MODEL" "$t" "$SENT")"
    p="$(OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t "$VENV/bin/python" bench/embed_peer.py "$MODEL" "$t" "$SENT" 2>/dev/null | tail -n1)"
    "$PY" - "$c" "$p" <<'PYEOF'
import json, sys
c, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for r in (c, p):
    print(f"{r['threads']:<8} {r['impl']:<22} {r['batch1_sps']:12.1f} {r['batch32_sps']:12.1f} {r['load_s']:10.3f} {r['peak_rss_mib']:12.1f}")
print(f"{'':8} {'ratio candle/torch':<22} {c['batch1_sps']/p['batch1_sps']:12.2f} {c['batch32_sps']/p['batch32_sps']:12.2f} "
      f"{c['load_s']/p['load_s']:10.2f} {c['peak_rss_mib']/p['peak_rss_mib']:12.2f}")
PYEOF
done
