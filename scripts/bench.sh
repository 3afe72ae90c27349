#!/usr/bin/env bash
# Benchmarks (figures printed beside baselines measured in the same run; never timed tests).
#   scripts/bench.sh            intake throughput, 20,000 submissions
#   scripts/bench.sh 100000     more
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh
cargo build --release --workspace --bins
REDRESS_BIN_DIR="$PWD/target/release" cargo run --release -p redress-system-tests --example bench_intake -- "${1:-20000}"
