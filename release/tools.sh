#!/usr/bin/env bash
# The supply-chain tools, from crates.io, at pinned versions, built once into the cache outside
# the checkout (~/.cache/maintenance-operator/tools/NAME-VERSION). Prints the binary's path.
# Usage: release/tools.sh cargo-deny | cargo-cyclonedx
set -euo pipefail
declare -A pinned=(
  [cargo-deny]=0.20.2      # licenses, bans, sources and RustSec advisories, offline
  [cargo-cyclonedx]=0.5.9  # the CycloneDX SBOM of the binary
)
name=$1
version=${pinned[$name]:?"release/tools.sh knows ${!pinned[*]}, not $name"}
root=${MO_CACHE:-$HOME/.cache/maintenance-operator}/tools/$name-$version
if [[ ! -x $root/bin/$name ]]; then
  echo "tools: building $name $version from crates.io into $root (once)" >&2
  cargo install --locked --quiet --root "$root" "$name@$version" >&2
fi
echo "$root/bin/$name"
