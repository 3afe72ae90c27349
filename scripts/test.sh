#!/usr/bin/env bash
# Runs every test: unit tests of the pure domain, and integration and system tests against a
# real PostgreSQL (REDRESS_TEST_DATABASE_URL, default the local server) and real nats-server
# processes each test starts from the pinned binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh
# The system tests start the service binaries as separate processes.
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast "$@"
# The fault suite, short version (about 2 minutes): kill -9 of each service, nats-server and
# PostgreSQL restarts and a 20 s outage under traffic; fails on anything lost or doubled.
# Skipped when arguments select particular tests.
if [ "$#" -eq 0 ]; then
  scripts/faults.sh --short
fi
# Static checks of what cannot run here (no Docker engine): compose schema, Dockerfile lint,
# kustomize renders and Kubernetes schemas, and cross-file consistency.
scripts/validate-deploy.sh
