#!/usr/bin/env bash
# Runs a command (default: the e2e scenarios) against a fresh local cluster, always tearing the
# cluster down afterwards, whatever happens.  Usage: run-e2e.sh [command...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
name=${CLUSTER_NAME:-mo-e2e-$$}
export CLUSTER_NAME=$name
trap '"$here/scripts/cluster-down.sh" "$name"' EXIT INT TERM
env_file=$(mktemp)
"$here/scripts/cluster-up.sh" "$name" > "$env_file"
source "$env_file"
rm -f "$env_file"
if [ $# -eq 0 ]; then
  set -- "$here/scripts/scenarios.sh"
fi
"$@"
