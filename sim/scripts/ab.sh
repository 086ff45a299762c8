#!/bin/sh
# A/B timing of two astra-sim binaries in the same conditions: runs them alternately
# ($REPS times, default 3) with the same arguments and prints wall and CPU (user+sys)
# seconds of each run, plus the load average before each pair.
# usage: sim/scripts/ab.sh BIN_BEFORE BIN_AFTER -- ARGS...
set -eu
a=$1; b=$2; shift 3
i=0
while [ "$i" -lt "${REPS:-3}" ]; do
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  for bin in "$a" "$b"; do
    /usr/bin/time -f "$(basename "$bin"): wall %e s  cpu %U+%S s" "$bin" "$@" 2>&1 >/dev/null | grep -v seeds
  done
  i=$((i + 1))
done
