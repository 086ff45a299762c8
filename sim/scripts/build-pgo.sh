#!/usr/bin/env bash
# The profile-guided build of astra-sim (BENCHMARKS.md §4): the `sim` profile, first
# instrumented, trained on seeds the benchmarks and CI never run, then rebuilt with the
# merged profile. Same code, same runs (the counters and per-seed log hashes are those of
# the plain build); LLVM lays out and inlines by measured branch and call counts, which
# took 1.1-1.2x fewer CPU seconds than the plain build (BENCHMARKS.md §4).
#
#   sim/scripts/build-pgo.sh                 # prints the binary's path on its last line
#   LLVM_PROFDATA=/path/to/llvm-profdata sim/scripts/build-pgo.sh
#
# Needs an llvm-profdata that reads the raw profiles of rustc's LLVM (`rustc -vV`):
# Debian's llvm-19 does for rustc 1.95 (`scripts/install-llvm-profdata` installs it).
# Build dirs: $CARGO_TARGET_DIR (default target/) /pgo/{gen,use}, apart from the normal
# builds, because the instrumenting flags would otherwise rebuild them.
set -euo pipefail
cd "$(dirname "$0")/../.."

base="${CARGO_TARGET_DIR:-target}/pgo"
mkdir -p "$base"
base=$(cd "$base" && pwd) # rustc is given absolute profile paths
triple=x86_64-unknown-linux-gnu
# RUSTFLAGS replaces the target's rustflags from .cargo/config.toml, so they are repeated
# here; the check keeps the two in step.
static='-C target-feature=+crt-static -C relocation-model=static'
if ! grep -q 'rustflags = \["-C", "target-feature=+crt-static", "-C", "relocation-model=static"\]' .cargo/config.toml; then
    echo "build-pgo: .cargo/config.toml's rustflags changed; update \$static in $0 to match" >&2
    exit 1
fi

profdata=$(scripts/install-llvm-profdata --find) || {
    echo "build-pgo: no llvm-profdata that reads this rustc's profiles; run scripts/install-llvm-profdata" >&2
    exit 1
}

raw="$base/raw"
echo "build-pgo: instrumented build" >&2
RUSTFLAGS="$static -Cprofile-generate=$raw" CARGO_TARGET_DIR="$base/gen" \
    cargo build --profile sim --locked -p astra-sim >&2
# The profile is kept while the instrumented binary is the same (same code, same flags):
# a retrained one differs in a few allocator and thread-exit counts from run to run, and
# cargo does not track the profile file, so every retraining also throws the optimised
# build away (crates whose code did not change would keep the old profile's layout).
gen_sum=$(cksum < "$base/gen/$triple/sim/astra-sim")
if [[ "$(cat "$base/profile.for" 2>/dev/null)" != "$gen_sum" || ! -s "$base/merged.profdata" ]]; then
    # Training: seeds far from the benchmarks' (0..) and CI's (0.., 100000..), every fault on.
    echo "build-pgo: training run" >&2
    rm -rf "$raw"
    mkdir -p "$raw"
    # A failing training seed is a real failure: its report (with the replay command) is shown.
    for args in "--seeds 600 --first-seed 1000000" "--seeds 40 --first-seed 2000000 --check-determinism"; do
        # shellcheck disable=SC2086 # the arguments are split on purpose
        if ! "$base/gen/$triple/sim/astra-sim" $args --jobs 1 >"$base/training.log" 2>&1; then
            cat "$base/training.log" >&2
            echo "build-pgo: the training run ($args) failed" >&2
            exit 1
        fi
    done
    "$profdata" merge -o "$base/merged.profdata" "$raw"/*.profraw
    rm -rf "$base/use"
    echo "$gen_sum" > "$base/profile.for"
fi
echo "build-pgo: optimised build" >&2
RUSTFLAGS="$static -Cprofile-use=$base/merged.profdata" CARGO_TARGET_DIR="$base/use" \
    cargo build --profile sim --locked -p astra-sim >&2
echo "$base/use/$triple/sim/astra-sim"
