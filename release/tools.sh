#!/usr/bin/env bash
# The release and docs tools, from crates.io, at pinned versions, built once into the cache outside
# the checkout (~/.cache/maintenance-operator/tools/NAME-VERSION). Prints the binary's path.
# Usage: release/tools.sh cargo-deny | cargo-cyclonedx | mdbook | lychee
set -euo pipefail
declare -A pinned=(
  [cargo-deny]=0.20.2      # licenses, bans, sources and RustSec advisories, offline
  [cargo-cyclonedx]=0.5.9  # the CycloneDX SBOM of the binary
  [mdbook]=0.5.4           # the book in docs/
  [lychee]=0.24.2          # the book's links and anchors, offline
)
# Only what the checks use: no live-reload server for mdbook, no mail-address checks for lychee.
declare -A features=(
  [mdbook]="--no-default-features --features search"
  [lychee]="--no-default-features"
)
name=$1
version=${pinned[$name]:?"release/tools.sh knows ${!pinned[*]}, not $name"}
root=${MO_CACHE:-$HOME/.cache/maintenance-operator}/tools/$name-$version
if [[ ! -x $root/bin/$name ]]; then
  echo "tools: building $name $version from crates.io into $root (once)" >&2
  # shellcheck disable=SC2086 # the features are several words
  cargo install --locked --quiet ${features[$name]:-} --root "$root" "$name@$version" >&2
fi
echo "$root/bin/$name"
