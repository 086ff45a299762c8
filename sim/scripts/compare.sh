#!/bin/sh
# One measuring session of two astra-sim binaries (BENCHMARKS.md §4): the A/B of 300 seeds,
# the 10,000-seed run (--jobs 2 twice, alternating, and --jobs 1), the CI sweep, a
# determinism check of AFTER, callgrind instruction totals of both (repeatable on a noisy
# machine) and a per-seed comparison of whole-run log hashes. Prints load, wall and CPU
# (user+sys) seconds for every run; counters must be identical between the two binaries.
# usage: sim/scripts/compare.sh BIN_BEFORE BIN_AFTER
set -eu
b=$1; a=$2
dir=$(dirname "$0")
run() {
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  out=$(mktemp)
  /usr/bin/time -f "$(basename "$1"): wall %e s  cpu %U+%S s" "$@" 2>&1 >"$out" | grep -v seeds
  grep -E "events \(|queue pops|liveness failures|nondeterministic" "$out"
  # any invariant with a non-zero count
  sed -n '/violations by invariant/,$p' "$out" | grep -v '^command:' | grep -E " [1-9][0-9]*$" || true
  rm -f "$out"
}
date -u
echo "== 300 seeds, --jobs 1"; REPS=3 "$dir/ab.sh" "$b" "$a" -- --seeds 300 --jobs 1
echo "== 10,000 seeds x 10 min, --jobs 2"
run "$b" --seeds 10000 --minutes 10 --jobs 2; run "$a" --seeds 10000 --minutes 10 --jobs 2
run "$a" --seeds 10000 --minutes 10 --jobs 2; run "$b" --seeds 10000 --minutes 10 --jobs 2
echo "== 10,000 seeds x 10 min, --jobs 1"
run "$b" --seeds 10000 --minutes 10 --jobs 1; run "$a" --seeds 10000 --minutes 10 --jobs 1
echo "== the CI sweep"
for x in "$b" "$a"; do run "$x" --seeds 3000 --first-seed 0 --workers 3 --faults all --minutes 10 --jobs 2; done
echo "== determinism"; run "$a" --seeds 200 --first-seed 100000 --jobs 2 --check-determinism
if command -v valgrind >/dev/null; then
  echo "== callgrind, 20 seeds"
  for x in "$b" "$a"; do
    echo "$(basename "$x"):"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$x" --seeds 20 --jobs 1 2>&1 |
      grep -E "Collected|events \("
  done
fi
echo "== per-seed log hashes"
bad=0; n=0
for s in $(seq 0 299) $(seq 8000 8099); do
  hb=$("$b" --seed "$s" 2>&1 | grep -o 'hash=[0-9a-f]*' | head -1)
  ha=$("$a" --seed "$s" 2>&1 | grep -o 'hash=[0-9a-f]*' | head -1)
  n=$((n + 1))
  if [ -z "$hb" ] || [ "$hb" != "$ha" ]; then echo "seed $s: $hb vs $ha"; bad=$((bad + 1)); fi
done
echo "$bad of $n seeds differ"
date -u
