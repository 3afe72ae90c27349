#!/usr/bin/env bash
# Runs the whole test suite N times in a row (default 5) to find flaky tests. Every other run
# (the 2nd, 4th, …) has the CPU loaded by a parallel cold release build of the workspace in a
# scratch target directory, as on a busy CI machine. Afterwards it prints every test that failed at
# least once, with how often and its first failure line, and exits 1 if any did.
#
#   scripts/stress-tests.sh [N] [extra cargo-nextest arguments…]
#
# Reports are kept in target/stress/run-<i>.xml (JUnit, from .config/nextest.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
shift || true
scripts/tools.sh
cargo build --workspace --bins --tests
out=target/stress
rm -rf "$out"
mkdir -p "$out"
load_pid=""
stop_load() {
  if [ -n "$load_pid" ]; then
    kill -- -"$load_pid" 2>/dev/null || kill "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
    load_pid=""
  fi
}
trap 'stop_load; rm -rf "$out/load-target"' EXIT
started=$(date +%s)
for i in $(seq 1 "$runs"); do
  loaded=no
  if [ $((i % 2)) -eq 0 ]; then
    loaded=yes
    rm -rf "$out/load-target"
    # Its own process group, so stopping it stops every rustc it started.
    setsid env CARGO_TARGET_DIR="$out/load-target" cargo build --workspace --release --jobs 2 \
      >"$out/load-$i.log" 2>&1 &
    load_pid=$!
  fi
  echo "== run $i of $runs (CPU loaded by a parallel build: $loaded)"
  run_started=$(date +%s)
  status=0
  cargo nextest run --workspace --no-fail-fast "$@" >"$out/run-$i.log" 2>&1 || status=$?
  stop_load
  cp target/nextest/default/junit.xml "$out/run-$i.xml" 2>/dev/null || true
  summary=$(grep -E '^ *Summary ' "$out/run-$i.log" | tail -1 || true)
  echo "   exit $status in $(( $(date +%s) - run_started )) s: ${summary:-no summary (see $out/run-$i.log)}"
done
echo "== $runs runs in $(( $(date +%s) - started )) s"
python3 - "$out" "$runs" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
out, runs = sys.argv[1], int(sys.argv[2])
failed, reports = {}, 0
for path in sorted(glob.glob(f"{out}/run-*.xml")):
    reports += 1
    for case in ET.parse(path).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            bad = case.find(tag)
            if bad is None:
                continue
            name = f"{case.get('classname')} {case.get('name')}"
            text = (bad.get("message") or "") + "\n" + (bad.text or "")
            line = next((l.strip() for l in text.splitlines()
                         if "panicked" in l or "assert" in l or "Error" in l), text.strip()[:200])
            failed.setdefault(name, []).append((path, line))
if reports < runs:
    print(f"only {reports} of {runs} runs left a JUnit report: see {out}/run-*.log")
if not failed:
    print(f"no test failed in {reports} runs")
    sys.exit(0 if reports == runs else 1)
print(f"{len(failed)} test(s) failed at least once:")
for name, hits in sorted(failed.items()):
    print(f"  {name}: failed in {len(hits)} of {reports} runs")
    print(f"    first failure ({hits[0][0]}): {hits[0][1]}")
sys.exit(1)
PY
