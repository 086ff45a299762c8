#!/usr/bin/env bash
# Records link/startup-order.txt: every function of the worker binaries that runs from exec
# until the worker is registered and idle (callgrind, complete, not sampled), for lld's
# --symbol-ordering-file (link/bins.rs passes it). Both binaries are traced and their lists
# merged (they share most code; a name missing from one binary is skipped by its link).
#
#   link/record-startup-order.sh   # relinks with a link map and no order, traces, writes the file
#   cargo build --release -p astra-io-tokio -p astra-io-smol -p astra-tests --bins   # relinks with it
#
# Needs valgrind. Traced: `run` against the reference scheduler (`ref-scheduler` of the same
# binary) with a config file, through handshake, register and ~3 heartbeat-free idle
# seconds, then SIGTERM (the drain is recorded too: it is small and runs in every process).
# Also needs python3 (link/symbols-at.py maps addresses to names).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
# The release binaries are stripped (and an unstripped profile would rebuild every
# dependency), so the link writes a map (ASTRA_LINK_MAP) that turns the traced addresses
# back into symbol names. The existing order is switched off, so a re-recording starts from
# the plain layout. Non-PIE (link/bins.rs): traced addresses are link addresses.
# ASTRA_TRACE_NO_BUILD=1 traces the binaries and maps already in target/release instead.
if [ "${ASTRA_TRACE_NO_BUILD:-}" != 1 ]; then
  ASTRA_LINK_MAP=1 ASTRA_LINK_NO_ORDER=1 \
    cargo build --release -p astra-io-tokio -p astra-io-smol -p astra-tests --bins
fi
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$target/release/astra-worker" "$target/release/astra-worker-smol" "$work/"

trace() { # $1 = binary, $3 = its package (map name); writes $work/$(basename $1).fns
  local bin="$1" name
  name="$(basename "$bin")"
  mkfifo "$work/ctl.$name"
  "$work/astra-worker" ref-scheduler --listen 127.0.0.1:0 <"$work/ctl.$name" >"$work/sched.$name" 2>/dev/null &
  local sched=$!
  exec 7>"$work/ctl.$name"
  local url=""
  for _ in $(seq 100); do
    url="$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$work/sched.$name")"
    [ -n "$url" ] && break
    sleep 0.1
  done
  mkdir -p "$work/d.$name"
  printf 'tenant: default\nheartbeat_interval_seconds: 5\n' >"$work/d.$name/worker.yaml"
  ASTRA_WORKER_CONFIG_FILE="$work/d.$name/worker.yaml" \
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$name" \
    --dump-instr=yes --compress-strings=no --compress-pos=no \
    "$bin" run --url "$url" --worker-id "trace-$name" --log-level warning \
    --data-dir "$work/d.$name/data" --packages-dir "$work/d.$name/packages" \
    >/dev/null 2>"$work/vg.$name" &
  local worker=$!
  for _ in $(seq 600); do
    grep -q '"Registered"' "$work/sched.$name" && break
    sleep 0.1
  done
  grep -q '"Registered"' "$work/sched.$name" || { echo "worker $name did not register" >&2; exit 1; }
  sleep 3
  kill -TERM "$worker"
  wait "$worker" || true
  exec 7>&-
  kill "$sched" 2>/dev/null || true
  wait "$sched" 2>/dev/null || true
  # Every executed instruction address of the binary's own object, to its symbol.
  python3 link/symbols-at.py "$target/release/$3.map" "$work/cg.$name" "ob=$bin" >"$work/$name.fns"
  echo "$name: $(wc -l <"$work/$name.fns") functions" >&2
}

trace "$work/astra-worker" - astra-io-tokio
trace "$work/astra-worker-smol" - astra-io-smol
# One symbol per line and nothing else (lld has no comment syntax for this file).
cat "$work/astra-worker.fns" "$work/astra-worker-smol.fns" | awk '!seen[$0]++' \
  >link/startup-order.txt.new
mv link/startup-order.txt.new link/startup-order.txt
echo "wrote link/startup-order.txt ($(wc -l <link/startup-order.txt) functions)" >&2
