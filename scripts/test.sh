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
# Static checks of what cannot run here (no Docker engine): compose schema, Dockerfile lint,
# kustomize renders and Kubernetes schemas, and cross-file consistency.
scripts/validate-deploy.sh
