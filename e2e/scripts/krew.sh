#!/usr/bin/env bash
# Builds the kubectl plugin's release archive for linux/amd64 and the krew manifest that names
# its sha256 (dist/krew/maintenance.yaml), from plugin/krew/maintenance.yaml.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
cargo build --locked --release -p kubectl-maintenance
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp target/release/kubectl-maintenance "$stage/"
printf 'Apache-2.0: https://www.apache.org/licenses/LICENSE-2.0\n' > "$stage/LICENSE"
mkdir -p dist/krew
archive=dist/kubectl-maintenance-linux-amd64.tar.gz
tar -C "$stage" --owner=0 --group=0 --mtime=@0 -czf "$archive" kubectl-maintenance LICENSE
sum=$(sha256sum "$archive" | cut -d' ' -f1)
sed "s/sha256: SHA256/sha256: $sum/" plugin/krew/maintenance.yaml > dist/krew/maintenance.yaml
echo "$archive ($sum) and dist/krew/maintenance.yaml"
