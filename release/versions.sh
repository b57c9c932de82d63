#!/usr/bin/env bash
# One version for everything a release ships: the operator, the plugin and the e2e crate
# (Cargo.toml, Cargo.lock), the chart's version and appVersion, the image every install path
# names (config/manager, charts/render.py, dist/install.yaml, the chart), the krew manifest,
# the install commands of the README and the docs, the docs' push example and the Dockerfile's
# build line.
#   release/versions.sh --check    every place says the operator's version (make lint)
#   release/versions.sh X.Y.Z      move them all to X.Y.Z (make bump VERSION=X.Y.Z), then render
#                                  the manifests again and open the release in CHANGELOG.md
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset IMAGE_REPOSITORY
source image/name.sh
v=$IMAGE_VERSION
repo=$IMAGE_REPOSITORY

# Each place and the text that holds the version there.
places() {
  local v=$1
  printf '%s\t%s\n' \
    operator/Cargo.toml "version = \"$v\"" \
    plugin/Cargo.toml "version = \"$v\"" \
    e2e/Cargo.toml "version = \"$v\"" \
    charts/maintenance-operator/Chart.yaml "version: $v" \
    charts/maintenance-operator/Chart.yaml "appVersion: $v" \
    config/manager/deployment.yaml "image: $repo:$v" \
    charts/render.py "image: $repo:$v" \
    dist/install.yaml "image: $repo:$v" \
    plugin/krew/maintenance.yaml "version: v$v" \
    plugin/krew/maintenance.yaml "releases/download/v$v/" \
    README.md "releases/download/v$v/install.yaml" \
    docs/src/getting-started/install.md "VERSION=$v" \
    docs/src/contributing/releasing.md "maintenance-operator-$v.oci.tar" \
    docs/src/contributing/releasing.md "platform/maintenance-operator:$v" \
    Dockerfile "maintenance-operator:$v ."
}

check() {
  local fail=0 file text
  while IFS=$'\t' read -r file text; do
    # A package's own version is a whole line ([package] comes first); elsewhere, a substring.
    local whole=()
    [[ $text == 'version = '* ]] && whole=(-x)
    if ! grep -qF "${whole[@]}" -- "$text" "$file"; then
      echo "versions: $file does not say '$text' (the operator's version is $1)" >&2
      fail=1
    fi
  done < <(places "$1")
  for crate in maintenance-operator kubectl-maintenance e2e; do
    grep -A1 -xF "name = \"$crate\"" Cargo.lock | grep -qxF "version = \"$1\"" \
      || { echo "versions: Cargo.lock has $crate at another version than $1" >&2; fail=1; }
  done
  return $fail
}

if [[ ${1:-} == --check ]]; then
  check "$v"
  exit
fi
new=${1:?"usage: release/versions.sh --check | X.Y.Z"}
if [[ ! $new =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "versions: $new is not a semantic version X.Y.Z" >&2
  exit 1
fi
check "$v"
while IFS=$'\t' read -r file text; do
  new_text=${text//$v/$new}
  python3 - "$file" "$text" "$new_text" <<'PY'
import sys
path, old, new = sys.argv[1:]
s = open(path).read()
if old.startswith("version = "):
    import re
    s = re.sub("^" + re.escape(old) + "$", new, s, count=1, flags=re.M)
else:
    s = s.replace(old, new)
open(path, "w").write(s)
PY
done < <(places "$v")
cargo update --offline --workspace --quiet
make --no-print-directory manifests >/dev/null
python3 - "$new" "$(date -u +%F)" <<'PY'
import sys
new, day = sys.argv[1:]
s = open("CHANGELOG.md").read()
s = s.replace("## [Unreleased]\n", f"## [Unreleased]\n\n## [{new}] - {day}\n", 1)
open("CHANGELOG.md", "w").write(s)
PY
check "$new"
echo "versions: $v -> $new; review CHANGELOG.md's [$new], then commit"
