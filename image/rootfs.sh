#!/usr/bin/env bash
# The image's whole filesystem, one source for image/Containerfile (make image) and the Dockerfile's
# runtime stage alike:
#   /maintenance-operator             the static (musl) operator binary
#   /etc/ssl/certs/ca-certificates.crt the Mozilla roots of Debian's ca-certificates package, made
#                                     from the package's own files (never the host's generated
#                                     bundle, which holds whatever local CAs the host added); the
#                                     operator's webhook and Prometheus clients trust it (mount your
#                                     own over it, or set SSL_CERT_FILE, for a private CA)
#   /etc/passwd, /etc/group           UID and GID 65532 named nonroot, as distroless images do
# Nothing else: no shell, no package manager, nothing the operator writes (it writes no file, so
# the root filesystem can be read-only).
# Usage: image/rootfs.sh BINARY OUT_DIR
set -euo pipefail
bin=$1 out=$2
# The package's files, checked against its own checksums, in a fixed order.
if ! dpkg --verify ca-certificates >&2; then
  echo "Debian's ca-certificates package is missing or altered: apt-get install --reinstall ca-certificates" >&2
  exit 1
fi
mapfile -t roots < <(dpkg -L ca-certificates | grep -E '^/usr/share/ca-certificates/mozilla/.+\.crt$' | LC_ALL=C sort)
if ((${#roots[@]} < 100)); then
  echo "only ${#roots[@]} Mozilla roots in Debian's ca-certificates package" >&2
  exit 1
fi
# A dynamic binary would need a loader and a libc the image does not have.
if [[ $(readelf -l "$bin") == *INTERP* ]]; then
  echo "$bin is dynamically linked; build it for x86_64-unknown-linux-musl" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out/etc/ssl/certs"
# Without its symbols: a third of its size, and a panic still names the code (its messages say where).
install -m 0755 --strip "$bin" "$out/maintenance-operator"
cat "${roots[@]}" > "$out/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$out/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' \
  > "$out/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group"
# The same bytes give the same layer: no build time in the files.
find "$out" -exec touch -h -d @0 {} +
