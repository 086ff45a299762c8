#!/usr/bin/env bash
# Builds both worker binaries in release mode and measures them side by side in one run
# (size, start→registered, idle RSS, echo latency and throughput against the reference
# scheduler). Extra arguments go to the benchmark, e.g. `bench/drivers.sh --tasks 5000`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The binaries as shipped and as link/startup-order-<package>.txt were recorded: this exact package set
# (another set unifies dependency features differently, which renames functions and leaves
# the start-up order unmatched). They are copied first because `cargo bench` rebuilds the
# package's binaries with its dev-dependencies' features.
cargo build --release --locked -p astra-io-tokio -p astra-io-smol -p astra-tests --bins
bin="${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/release"  # .cargo/config.toml build.target
copies="$(mktemp -d)"
trap 'rm -rf "$copies"' EXIT
cp "$bin/astra-worker" "$bin/astra-worker-smol" "$copies/"
# --profile release reuses the binaries' artifacts (the bench profile would rebuild them all).
# Absolute paths: cargo runs the bench from the package directory.
cargo bench --profile release -p astra-io-smol --bench drivers -- \
  --tokio "$copies/astra-worker" --smol "$copies/astra-worker-smol" "$@"
