#!/usr/bin/env bash
# Unpacks the archive make image writes into a bundle root for runc, as a kubelet's runtime
# would: DIR/rootfs holds the image's files, DIR/image.json its config (entrypoint, command,
# user). The e2e scenario that runs the operator from its image starts here.
# Installs runc (Debian) when missing, which runs the bundle.
# Usage: image/unpack.sh ARCHIVE DIR
set -euo pipefail
archive=$1 dir=$2
if ! command -v runc >/dev/null; then
  apt-get install -y --no-install-recommends runc >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends runc >&2; }
fi
cache=${MO_CACHE:-$HOME/.cache/maintenance-operator}/buildah
b=(buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)
container=$("${b[@]}" from --quiet --pull=false "oci-archive:$archive")
image=$("${b[@]}" inspect --format '{{.FromImageID}}' "$container")
# Nothing of it stays in buildah's storage: the archive is the image.
trap '"${b[@]}" rm "$container" >/dev/null; "${b[@]}" rmi --force "$image" >/dev/null' EXIT
mounted=$("${b[@]}" mount "$container")
rm -rf "$dir"
mkdir -p "$dir/rootfs"
cp -a "$mounted/." "$dir/rootfs/"
"${b[@]}" umount "$container" >/dev/null
skopeo inspect --config "oci-archive:$archive" > "$dir/image.json"
