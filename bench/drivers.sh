#!/usr/bin/env bash
# Builds both worker binaries in release mode and measures them side by side in one run
# (size, start→registered, idle RSS, echo latency and throughput against the reference
# scheduler). Extra arguments go to the benchmark, e.g. `bench/drivers.sh --tasks 5000`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p astra-io-tokio -p astra-io-smol
# --profile release reuses the binaries' artifacts (the bench profile would rebuild them all).
# Absolute paths: cargo runs the bench from the package directory.
bin="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/release"  # .cargo/config.toml build.target
exec cargo bench --profile release -p astra-io-smol --bench drivers -- \
  --tokio "$bin/astra-worker" --smol "$bin/astra-worker-smol" "$@"
