#!/usr/bin/env bash
# make test's check of make bump: in a copy of the committed tree, bump to 9.8.7 and see every
# place say it, the rendered manifests current, and the old version nowhere it was.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
git -C "$root" ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$copy")
cd "$copy"
root=$copy source image/name.sh
old=$IMAGE_VERSION
CARGO_TARGET_DIR=$root/target release/versions.sh 9.8.7 >/dev/null
release/versions.sh --check
image/check.sh
e2e/scripts/render-manifests.sh --check >/dev/null
grep -qF "## [9.8.7] - " CHANGELOG.md
left=$(grep -rlF -- "$old" operator/Cargo.toml plugin/Cargo.toml e2e/Cargo.toml charts config/manager dist/install.yaml plugin/krew Dockerfile || true)
if [[ -n $left ]]; then
  echo "versions_test: $old is still in: $left" >&2
  exit 1
fi
echo "versions_test: bumped $old -> 9.8.7 in a copy; every place follows"
