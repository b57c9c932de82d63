#!/usr/bin/env bash
# make image-check (part of make lint): the install paths and the Dockerfile agree with make image.
#  - the Dockerfile's runtime stage is image/Containerfile's (only the COPY's source differs:
#    a build stage there, the folder image/rootfs.sh fills here);
#  - config/manager, dist/install.yaml and the chart name the image make image builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source image/name.sh
fail=0
runtime() { sed -n '/^FROM scratch$/,$p' "$1" | grep -v '^#'; }
if ! diff -u <(runtime image/Containerfile) \
  <(runtime Dockerfile | sed 's|^COPY --from=build /rootfs/ /$|COPY rootfs/ /|') >&2; then
  echo "image-check: the Dockerfile's runtime stage differs from image/Containerfile's (above)" >&2
  fail=1
fi
for f in config/manager/deployment.yaml dist/install.yaml; do
  if ! grep -qx "        *image: $IMAGE" "$f"; then
    echo "image-check: $f does not name $IMAGE, the image make image builds" >&2
    fail=1
  fi
done
chart=charts/maintenance-operator
if ! grep -qx "  repository: $IMAGE_REPOSITORY" $chart/values.yaml \
  || ! grep -qx "appVersion: $IMAGE_VERSION" $chart/Chart.yaml; then
  echo "image-check: the chart's image.repository and appVersion are not $IMAGE_REPOSITORY and $IMAGE_VERSION" >&2
  fail=1
fi
exit $fail
