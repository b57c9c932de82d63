#!/usr/bin/env bash
# make image-check (part of make lint): the install paths and the Dockerfile agree with make image.
#  - the Dockerfile's runtime stage (from its last FROM) is image/Containerfile's, but for the
#    COPY's source: a build stage there, the folder image/rootfs.sh fills here;
#  - config/manager, dist/install.yaml and the chart name the image make image builds, by the
#    name in image/name.sh (an IMAGE_REPOSITORY set for your own registry is not what is checked).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset IMAGE_REPOSITORY
source image/name.sh
fail=0
say() {
  echo "image-check: $*" >&2
  fail=1
}
# The lines from the last FROM on, comments left out.
runtime() { awk '/^FROM /{n=NR} {line[NR]=$0} END {for (i=n; i<=NR; i++) if (n && line[i] !~ /^#/) print line[i]}' "$1"; }
ours=$(runtime image/Containerfile)
theirs=$(runtime Dockerfile | sed 's|^COPY --from=build /rootfs/ /$|COPY rootfs/ /|')
if [[ $ours != "FROM scratch"$'\n'* ]]; then
  say "image/Containerfile's runtime stage is not FROM scratch"
elif [[ $ours != "$theirs" ]]; then
  diff -u <(echo "$ours") <(echo "$theirs") >&2 || true
  say "the Dockerfile's runtime stage differs from image/Containerfile's (above)"
fi
# Every image a manifest names, exactly.
for f in config/manager/deployment.yaml dist/install.yaml; do
  named=$(sed -n 's/^ *image: *\([^ ].*\)$/\1/p' "$f" | sort -u)
  [[ $named == "$IMAGE" ]] || say "$f names ${named:-no image}, not $IMAGE, the image make image builds"
done
chart=charts/maintenance-operator
grep -qxF "  repository: $IMAGE_REPOSITORY" $chart/values.yaml || say "$chart/values.yaml's image.repository is not $IMAGE_REPOSITORY"
grep -qxF '  tag: ""' $chart/values.yaml || say "$chart/values.yaml sets image.tag: the chart's appVersion names the image"
grep -qxF "appVersion: $IMAGE_VERSION" $chart/Chart.yaml || say "$chart/Chart.yaml's appVersion is not $IMAGE_VERSION"
exit $fail
