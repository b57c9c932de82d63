# The image's name, sourced by image/build.sh and image/check.sh (with $root set to the checkout):
# the repository every install path names, tagged with the operator's version (operator/Cargo.toml).
IMAGE_REPOSITORY=${IMAGE_REPOSITORY:-ghcr.io/example/maintenance-operator}
IMAGE_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/operator/Cargo.toml" | head -1)
IMAGE="$IMAGE_REPOSITORY:$IMAGE_VERSION"
IMAGE_ARCHIVE="$root/dist/maintenance-operator-$IMAGE_VERSION.oci.tar"
