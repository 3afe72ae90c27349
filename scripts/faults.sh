#!/usr/bin/env bash
# The fault suite (tests/examples/faults.rs): bursts of submissions while each service is killed
# (-9), nats-server dies, PostgreSQL restarts (fast, immediate) and stays down; then a table per
# fault of lost / doubled / recovery time. Exits non-zero if anything was lost or doubled.
#   scripts/faults.sh              5-minute PostgreSQL outage, about 10 minutes in all
#   scripts/faults.sh --short      20 s outage, the version CI runs (about 4 minutes)
#   scripts/faults.sh --cluster    on a three-node NATS cluster, streams with three replicas,
#                                  killing one node and then the streams' leader
# Options: --per-fault N (submissions per fault), --outage SECONDS. Debug binaries by default;
# REDRESS_BIN_DIR=target/release after `cargo build --release` to use release ones.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh
if [ -z "${REDRESS_BIN_DIR:-}" ]; then
  cargo build --workspace --bins
fi
cargo run -q -p redress-system-tests --example faults -- "$@"
