#!/usr/bin/env bash
# Copies the Docker build context — the tracked files `.dockerignore` leaves in — to DIR, so the
# release build can run on exactly what `docker build` would see (CI does; no Docker engine runs
# here). Understands the pattern forms .dockerignore uses: `dir/`, `file`, globs with `*` and
# `**`, and `!` exceptions, the last matching line winning.
#
#   scripts/docker-context.sh DIR
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:?usage: scripts/docker-context.sh DIR}"
rm -rf "$dest"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | python3 -c '
import fnmatch, os, shutil, sys
dest = sys.argv[1]
rules = []
for line in open(".dockerignore", encoding="utf-8"):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    keep = line.startswith("!")
    pattern = line[1:] if keep else line
    rules.append((keep, pattern.rstrip("/")))
def excluded(path):
    out = False
    for keep, p in rules:
        if path == p or path.startswith(p + "/") or fnmatch.fnmatch(path, p) \
                or fnmatch.fnmatch(path, p.replace("**/", "")):
            out = not keep
    return out
copied = 0
for path in sys.stdin.read().split("\0"):
    if not path or excluded(path) or not os.path.isfile(path):
        continue
    target = os.path.join(dest, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(path, target)
    copied += 1
print(f"docker build context: {copied} files in {dest}")
' "$dest"
