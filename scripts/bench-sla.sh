#!/usr/bin/env sh
# SLA monitor benchmark: lateness of overdue events at 10k/100k/1M open clocks (see
# services/sla-monitor/README.md). Sizes: SLA_BENCH_SIZES=10000,100000,1000000,10000000
set -e
cargo build --release -p redress-sla-monitor --bins
REDRESS_BIN_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}/release" cargo bench -p redress-sla-monitor --bench sla
