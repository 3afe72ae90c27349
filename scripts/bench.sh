#!/usr/bin/env bash
# Benchmarks: figures printed beside baselines measured in the same run (never timed tests).
#   scripts/bench.sh pipeline 20000    the whole system: submissions → recorded, routed, assigned,
#                                      clocks set (BENCH_BODY=protobuf, BENCH_OPEN=20000,
#                                      BENCH_PACED=1000 options)
#   scripts/bench.sh                   intake throughput, 20,000 bus submissions
#   scripts/bench.sh intake 100000     the same with more
#   scripts/bench.sh registry 1000000  ListComplaints / GetComplaint on a million complaints
#   scripts/bench.sh board 5000        the board's event gateway: 50 SSE clients, lag beside NATS
#   scripts/bench.sh board-scale 1000000  the wallboard, reports and a restart at a million complaints
#   scripts/bench-sla.sh               the SLA monitor (lateness at 10k–1M open clocks)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh
what="${1:-intake}"
case "$what" in
  intake)   example=bench_intake;   n="${2:-20000}" ;;
  pipeline) example=bench_pipeline; n="${2:-20000}" ;;
  registry) example=bench_registry; n="${2:-1000000}" ;;
  board)    example=bench_board;    n="${2:-5000}" ;;
  board-scale) example=bench_board_scale; n="${2:-1000000}" ;;
  *) echo "unknown benchmark $what (pipeline, intake, registry, board, board-scale)" >&2; exit 2 ;;
esac
# The services and the bench in one build, then the bench run as built: `cargo run -p` of the
# example alone resolves the shared crates' features for that one package, so the next bench's
# build of the services compiled them again (four minutes per run here).
cargo build --release --workspace --bins --example "$example"
REDRESS_BIN_DIR="$PWD/target/release" "target/release/examples/$example" "$n"
