#!/usr/bin/env bash
# Runs the e2e scenarios against the cluster in the environment (see run-e2e.sh): first the
# start-up test, alone (it removes the CRD); then those that can share the cluster, side by side
# (E2E_JOBS at once, default 5: more leave pods pending on 2 cores, which the scenarios' error
# rates then count); then, one at a time, those that stop a component the others rely on; last,
# the operator upgraded and then uninstalled (it removes what every other scenario needs).
# Extra arguments filter the tests by name.
set -euo pipefail
cargo=${CARGO:-cargo}
jobs=${E2E_JOBS:-5}
"$cargo" test --locked -p e2e --test startup -- "$@"
"$cargo" test --locked -p e2e --test scenarios -- --test-threads="$jobs" "$@"
"$cargo" test --locked -p e2e --test shared_components -- --test-threads=1 "$@"
"$cargo" test --locked -p e2e --test install_lifecycle -- --test-threads=1 "$@"
