#!/usr/bin/env bash
# The image's whole filesystem, one source for image/Containerfile (make image) and the Dockerfile's
# runtime stage alike:
#   /maintenance-operator             the static (musl) operator binary
#   /etc/ssl/certs/ca-certificates.crt the CA bundle of Debian's ca-certificates package, which the
#                                     operator's webhook and Prometheus clients trust (mount your
#                                     own over it, or set SSL_CERT_FILE, for a private CA)
#   /etc/passwd, /etc/group           UID and GID 65532 named nonroot, as distroless images do
# Nothing else: no shell, no package manager, nothing the operator writes (it writes no file, so
# the root filesystem can be read-only).
# Usage: image/rootfs.sh BINARY OUT_DIR
set -euo pipefail
bin=$1 out=$2
bundle=/etc/ssl/certs/ca-certificates.crt
if [[ ! -s $bundle ]]; then
  echo "no CA bundle at $bundle: install Debian's ca-certificates package" >&2
  exit 1
fi
# A dynamic binary would need a loader and a libc the image does not have.
if readelf -l "$bin" | grep -q 'INTERP'; then
  echo "$bin is dynamically linked; build it for x86_64-unknown-linux-musl" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out/etc/ssl/certs"
# Without its symbols: a third of its size, and a panic still names the code (its messages say where).
install -m 0755 --strip "$bin" "$out/maintenance-operator"
install -m 0644 "$bundle" "$out/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' \
  > "$out/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group"
# The same bytes give the same layer: no build time in the files.
find "$out" -exec touch -h -d @0 {} +
