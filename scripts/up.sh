#!/usr/bin/env bash
# Starts the whole Redress system locally: installs the pinned nats-server (scripts/tools.sh),
# builds every binary, then hands over to `redress up`, which checks PostgreSQL, starts NATS if
# needed and runs the five services with their logs in this terminal. Ctrl-C stops everything.
# Arguments are passed to `redress up` (see `target/debug/redress up --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh
cargo build --workspace --bins
exec target/debug/redress up "$@"
