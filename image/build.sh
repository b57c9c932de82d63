#!/usr/bin/env bash
# make image: the operator's OCI image, built here without a container daemon.
#  1. the static musl binary (cargo, target x86_64-unknown-linux-musl);
#  2. its files (image/rootfs.sh), then the image from image/Containerfile with buildah
#     (--isolation chroot, storage driver vfs, storage in the cache outside the checkout);
#  3. dist/maintenance-operator-<version>.oci.tar, and its size and digest;
#  4. the SBOMs of the binary and the image beside it (release/sbom.sh).
# The image is built again only when what makes it changes: the Containerfile, the scripts, the
# Cargo.lock, the binary, the ca-certificates package, buildah or the name (dist/…oci.tar.inputs
# holds their hash).
# Installs what it needs from Debian's packages and rustup when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source image/name.sh
target=x86_64-unknown-linux-musl
cache=${MO_CACHE:-$HOME/.cache/maintenance-operator}/buildah

missing=()
for tool in buildah:buildah musl-gcc:musl-tools readelf:binutils skopeo:skopeo; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
dpkg-query -W ca-certificates >/dev/null 2>&1 || missing+=(ca-certificates)
if ((${#missing[@]})); then
  echo "image: installing ${missing[*]} from Debian's packages" >&2
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2

cargo build --locked --release -p maintenance-operator --target "$target" >&2
bin=target/$target/release/maintenance-operator

digest() { skopeo inspect --format '{{.Digest}}' "oci-archive:$IMAGE_ARCHIVE"; }

# The archive's size and its digest ($1).
report() {
  local digest=$1 size
  size=$(stat -c %s "$IMAGE_ARCHIVE")
  echo "image: $IMAGE"
  echo "  archive: ${IMAGE_ARCHIVE#"$root"/} ($((size / 1024)) KiB, $(awk "BEGIN {printf \"%.1f\", $size / 1048576}") MiB)"
  echo "  files:   $(du -sk --apparent-size target/image-context/rootfs 2>/dev/null | cut -f1) KiB unpacked"
  echo "  digest:  $digest"
}

inputs=$({
  sha256sum image/Containerfile image/rootfs.sh image/build.sh release/sbom.sh Cargo.lock "$bin"
  echo "$IMAGE $(dpkg-query -W -f '${Version}' ca-certificates) $(buildah --version)"
} | sha256sum | cut -d' ' -f1)
if [[ -s $IMAGE_ARCHIVE && $(cat "$IMAGE_ARCHIVE.inputs" 2>/dev/null) == "$inputs" ]]; then
  echo "image: current (nothing that makes it changed)"
  digest=$(digest)
  report "$digest"
  [[ -s dist/maintenance-operator-$IMAGE_VERSION.cdx.json ]] || release/sbom.sh "$digest"
  exit 0
fi

context=target/image-context
image/rootfs.sh "$bin" "$context/rootfs"
cp image/Containerfile "$context/Containerfile"
b=(buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)
# --timestamp 0: the same files make the same image, digest included.
"${b[@]}" build --quiet --isolation chroot --timestamp 0 --pull=false \
  --label "org.opencontainers.image.title=maintenance-operator" \
  --label "org.opencontainers.image.version=$IMAGE_VERSION" \
  --label "org.opencontainers.image.licenses=Apache-2.0" \
  --label "org.opencontainers.image.ref.name=$IMAGE" \
  -f "$context/Containerfile" -t "$IMAGE" "$context" >&2
mkdir -p dist
rm -f "$IMAGE_ARCHIVE" "$IMAGE_ARCHIVE.inputs" dist/maintenance-operator-"$IMAGE_VERSION".*cdx.json
"${b[@]}" push --quiet "$IMAGE" "oci-archive:$IMAGE_ARCHIVE:$IMAGE" >&2
# The archive is the product; the copy in buildah's storage would only grow the cache.
"${b[@]}" rmi --force "$IMAGE" >/dev/null
digest=$(digest)
report "$digest"
release/sbom.sh "$digest"
echo "$inputs" > "$IMAGE_ARCHIVE.inputs"
