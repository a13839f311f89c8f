#!/usr/bin/env bash
# Validates deploy/k8s/ without a cluster:
#   1. schema: kubernetes-validate (PyPI; ships the Kubernetes OpenAPI schemas, so it works
#      offline once installed) in strict mode (unknown fields are errors) against the oldest and
#      newest Kubernetes versions we claim (K8S_VERSIONS); a copy with a misspelled field must be
#      rejected, so a validator that accepts anything cannot pass this test;
#   2. consistency (tests/k8s/consistency.py): the StatefulSet, Services and PodDisruptionBudget
#      select the same pods, SHOAL_SEED names the headless Service, the probes hit the HTTP
#      port's /health/ready and /health/live, the data volume is mounted at /var/lib/shoal.
# The validator is installed into CARGO_TARGET_DIR/k8s-venv on first use. When it cannot be
# installed (no network to PyPI), the schema step prints a SKIP line and only the YAML parse and
# consistency checks run, with PyYAML if the system Python has it.
set -euo pipefail
cd "$(dirname "$0")/../.."
K8S_VERSIONS=${K8S_VERSIONS:-"1.28.0 1.37.0"}
venv=${CARGO_TARGET_DIR:-$PWD/target}/k8s-venv
manifests=(deploy/k8s/*.yaml)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-k8s.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

python=python3
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  if python3 -m venv "$venv" >"$tmp/venv.log" 2>&1 \
    && "$venv/bin/pip" install -q "kubernetes-validate==1.37.0" >>"$tmp/venv.log" 2>&1; then
    :
  else
    tail -5 "$tmp/venv.log" >&2 || true
  fi
fi
if [ -x "$venv/bin/kubernetes-validate" ]; then
  python=$venv/bin/python
  for version in $K8S_VERSIONS; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}" \
      || fail "deploy/k8s does not validate against Kubernetes $version"
    echo "ok: deploy/k8s validates (strict) against Kubernetes $version"
  done
  # The validator must reject a wrong manifest: a misspelled field in the StatefulSet.
  sed 's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/' deploy/k8s/statefulset.yaml \
    >"$tmp/bad.yaml"
  if "$venv/bin/kubernetes-validate" --strict --quiet "$tmp/bad.yaml" >"$tmp/bad.log" 2>&1; then
    fail "the validator accepted a misspelled field"
  fi
  echo "ok: the validator rejects a misspelled field"
else
  echo "SKIP k8s schema validation: kubernetes-validate could not be installed (no PyPI?)"
fi

if ! "$python" -c 'import yaml' >/dev/null 2>&1; then
  echo "SKIP k8s consistency checks: no PyYAML"
  exit 0
fi
"$python" tests/k8s/consistency.py "${manifests[@]}"
