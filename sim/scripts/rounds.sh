#!/bin/sh
# Timed rounds of several astra-sim binaries in the same minutes (BENCHMARKS.md §4): each
# round runs every binary once, in the order given, with the same arguments, and prints
# the load average, then per binary its wall and CPU seconds and the events/s per core it
# reported, plus its event count (which must be the same for all: same runs).
# usage: ROUNDS=4 sim/scripts/rounds.sh BIN... -- ARGS...
set -eu
bins=""
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do bins="$bins $1"; shift; done
[ "$#" -gt 0 ] && shift
r=0
while [ "$r" -lt "${ROUNDS:-3}" ]; do
  echo "round $((r + 1)) $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  for bin in $bins; do
    out=$(mktemp)
    t=$( { /usr/bin/time -f "wall %e s  cpu %U+%S s" "$bin" "$@" >"$out"; } 2>&1 | tail -n 1)
    eps=$(sed -n 's/^ *events\/s per core *//p' "$out")
    ev=$(sed -n 's/^ *events (drove a machine) *//p' "$out")
    printf '  %-14s %s  per core %s  events %s\n' "$(basename "$bin")" "$t" "$eps" "$ev"
    rm -f "$out"
  done
  r=$((r + 1))
done
