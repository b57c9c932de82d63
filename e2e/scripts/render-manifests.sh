#!/usr/bin/env bash
# Renders config/default into dist/install.yaml and into the Helm chart (charts/render.py), so
# that `kubectl apply -k config/default`, install.yaml and the chart install the same thing.
# With --check, renders into a scratch copy and fails if what is committed is stale.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
# The release is rendered with the pinned kubectl's kustomize, whatever a shell exported.
unset E2E_KUBERNETES
source "$here/e2e/versions.env"
kubectl="$E2E_BIN/kubectl"
out=$here
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  mkdir -p "$out/charts"
  cp -r "$here/charts/maintenance-operator" "$out/charts/"
fi
mkdir -p "$out/dist"
{
  echo "# maintenance-operator: everything it needs, in one file (make manifests renders it from config/default)."
  echo "#   kubectl apply --server-side -f dist/install.yaml"
  "$kubectl" kustomize "$here/config/default"
} > "$out/dist/install.yaml"
"$kubectl" kustomize "$here/config/default" | python3 "$here/charts/render.py" "$out/charts/maintenance-operator"
if [ "${1:-}" = "--check" ]; then
  for p in dist/install.yaml charts/maintenance-operator; do
    if ! diff -r "$here/$p" "$out/$p" >/dev/null; then
      echo "$p is stale: run \`make manifests\` and commit the result" >&2
      diff -r "$here/$p" "$out/$p" | head -20 >&2
      exit 1
    fi
  done
  echo "dist/install.yaml and charts/maintenance-operator match config/default"
fi
