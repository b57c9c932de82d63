#!/usr/bin/env bash
# Tears down what cluster-up.sh started: the kwokctl cluster and Prometheus. Safe to run twice.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/versions.env"
name=${1:-${CLUSTER_NAME:-mo-e2e}}
state=${E2E_STATE:-$here/../target/e2e}
export KWOK_WORKDIR="$state/kwok" PATH="$E2E_BIN:$PATH"
"$here/scripts/prometheus.sh" stop "$state/prometheus-$name" 2>/dev/null
kwokctl delete cluster --name "$name" >/dev/null 2>&1 || true
# An operator run from its image (e2e s32) that its test could not stop (the test killed).
if command -v runc >/dev/null; then
  runc list -q 2>/dev/null | grep "^mo-$name-" | xargs -r -n1 runc delete --force 2>/dev/null || true
fi
