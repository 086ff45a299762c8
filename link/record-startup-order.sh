#!/usr/bin/env bash
# Records link/startup-order-<package>.txt: every function of each worker binary that runs
# from exec until the worker is registered and idle (callgrind, complete, not sampled), for lld's
# --symbol-ordering-file (link/bins.rs passes each binary its own list).
#
#   link/record-startup-order.sh   # relinks with a link map and no order, traces, writes the file
#   cargo build --release -p astra-io-tokio -p astra-io-smol -p astra-tests --bins   # relinks with it
# Outputs are under target/x86_64-unknown-linux-gnu/release (.cargo/config.toml: static build).
#
# Needs valgrind. Traced: `run` against the reference scheduler (`ref-scheduler` of the same
# binary) with a config file, through handshake, register and ~3 heartbeat-free idle
# seconds, then SIGTERM (the drain is recorded too: it is small and runs in every process).
# Also needs python3 (link/symbols-at.py maps addresses to names).
set -euo pipefail
cd "$(dirname "$0")/.."
# The triple of .cargo/config.toml's build.target (static executables).
release="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/release"
# The release binaries are stripped (and an unstripped profile would rebuild every
# dependency), so every link writes a map (link/bins.rs) that turns the traced addresses
# back into symbol names. The binaries traced are the normal release build, current order
# included: ThinLTO's `.llvm.<hash>` names change with the link line, so a recording from a
# differently linked build (say, without the order) misses a fifth of its names. The
# relink afterwards has the same link line, so the names recorded are the names linked
# (check: run this twice; the second run changes nothing but the order of first use).
# Non-PIE (link/bins.rs): traced addresses are link addresses.
# ASTRA_TRACE_NO_BUILD=1 traces the binaries and maps already built instead.
if [ "${ASTRA_TRACE_NO_BUILD:-}" != 1 ]; then
  # Relink even when nothing changed: another build (`cargo bench -p astra-io-smol` links
  # with dev-dependency features) may have written the maps since, and an up-to-date binary
  # would not rewrite its map. The relink has the same link line, so the same names.
  touch link/bins.rs
  cargo build --release --locked -p astra-io-tokio -p astra-io-smol -p astra-tests --bins
fi
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$release/astra-worker" "$release/astra-worker-smol" "$work/"

# The two ways a worker is usually configured, so the start-up code of both is packed:
#   a: block-style YAML file, flags for the rest;
#   b: flow-style file (`{}`), the environment, and a numeric flag (as bench-loopback does).
trace() { # $1 = binary, $2 = variant (a|b), $3 = its package (map name); appends to $work/$(basename $1).fns
  local bin="$1" variant="$2" name tag
  name="$(basename "$bin")"
  tag="$name.$variant"
  mkfifo "$work/ctl.$tag"
  "$work/astra-worker" ref-scheduler --listen 127.0.0.1:0 <"$work/ctl.$tag" >"$work/sched.$tag" 2>/dev/null &
  local sched=$!
  exec 7>"$work/ctl.$tag"
  local url=""
  for _ in $(seq 100); do
    url="$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$work/sched.$tag")"
    [ -n "$url" ] && break
    sleep 0.1
  done
  local d="$work/d.$tag"
  mkdir -p "$d"
  local -a args=(run --url "$url" --worker-id "trace-$tag" --data-dir "$d/data" --packages-dir "$d/packages")
  local -a envs=()
  if [ "$variant" = a ]; then
    printf 'tenant: default\nheartbeat_interval_seconds: 5\n' >"$d/worker.yaml"
    args+=(--log-level warning)
  else
    echo '{}' >"$d/worker.yaml"
    args+=(--max-parallel 8)
    envs=(ASTRA_WORKER_LOG_LEVEL=WARNING ASTRA_WORKER_EXTRA_ACK_DELAY_MS=0)
  fi
  env ASTRA_WORKER_CONFIG_FILE="$d/worker.yaml" "${envs[@]}" \
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$tag" \
    --dump-instr=yes --compress-strings=no --compress-pos=no \
    "$bin" "${args[@]}" >/dev/null 2>"$work/vg.$tag" &
  local worker=$!
  for _ in $(seq 600); do
    grep -q '"Registered"' "$work/sched.$tag" && break
    sleep 0.1
  done
  grep -q '"Registered"' "$work/sched.$tag" || { echo "worker $tag did not register" >&2; exit 1; }
  sleep 3
  kill -TERM "$worker"
  wait "$worker" || true
  exec 7>&-
  kill "$sched" 2>/dev/null || true
  wait "$sched" 2>/dev/null || true
  # Every executed instruction address of the binary's own object, to its symbol.
  python3 link/symbols-at.py "$release/$3.map" "$work/cg.$tag" "ob=$bin" >>"$work/$name.fns"
  echo "$tag: $(wc -l <"$work/$name.fns") functions so far" >&2
}

for v in a b; do
  trace "$work/astra-worker" "$v" astra-io-tokio
  trace "$work/astra-worker-smol" "$v" astra-io-smol
done
# One list per binary, of what that binary ran: a merged list packed the other binary's
# start-up functions into this one's hot region wherever both contain them (measured: the
# smol binary had 128 kB more code resident than tokio with the merged list).
# One symbol per line and nothing else (lld has no comment syntax for this file).
for pair in astra-io-tokio:astra-worker astra-io-smol:astra-worker-smol; do
  pkg="${pair%%:*}" bin="${pair#*:}"
  awk '!seen[$0]++' "$work/$bin.fns" >"$work/traced.$pkg"
  # Then what the trace cannot show (CPU-specific variants; see link/startup-extra.txt).
  python3 link/order-extras.py "$release/$pkg.map" "$work/traced.$pkg" link/startup-extra.txt |
    awk '!seen[$0]++' >"$work/extra.$pkg"
  out="link/startup-order-$pkg.txt"
  cat "$work/traced.$pkg" "$work/extra.$pkg" | awk '!seen[$0]++' >"$out.new"
  mv "$out.new" "$out"
  echo "wrote $out ($(wc -l <"$out") functions, $(wc -l <"$work/extra.$pkg") of them CPU variants)" >&2
done
