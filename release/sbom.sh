#!/usr/bin/env bash
# The SBOMs (CycloneDX 1.5, JSON) of the binary and of the image, beside the image's archive:
#   dist/maintenance-operator-<version>.binary.cdx.json  every crate the static binary links
#                                                       (cargo cyclonedx, musl target, no build deps)
#   dist/maintenance-operator-<version>.cdx.json        the image: that binary with its crates, the
#                                                       CA bundle's Debian package, by the image's digest
# image/build.sh runs it after each build. Usage: release/sbom.sh IMAGE_DIGEST
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source image/name.sh
digest=$1
cyclonedx=$(release/tools.sh cargo-cyclonedx)
# It writes one file per binary of every workspace member, into the member's folder: the
# operator's is kept, the rest removed.
SOURCE_DATE_EPOCH=0 "$cyclonedx" cyclonedx --manifest-path operator/Cargo.toml --format json --spec-version 1.5 \
  --target x86_64-unknown-linux-musl --describe binaries --no-build-deps --quiet
binary=dist/maintenance-operator-$IMAGE_VERSION.binary.cdx.json
mv operator/maintenance-operator_bin.cdx.json "$binary"
rm -f operator/*_bin.cdx.json plugin/*_bin.cdx.json e2e/*_bin.cdx.json
ca_version=$(dpkg-query -W -f '${Version}' ca-certificates)
python3 - "$binary" "dist/maintenance-operator-$IMAGE_VERSION.cdx.json" "$IMAGE_REPOSITORY" "$IMAGE_VERSION" \
  "$digest" "$ca_version" <<'PY'
import json, sys
binary_path, out, repository, version, digest, ca_version = sys.argv[1:]
b = json.load(open(binary_path))
app = b["metadata"]["component"]
image_ref = f"pkg:oci/maintenance-operator@{digest.replace(':', '%3A')}?repository_url={repository}&tag={version}"
ca = {
    "type": "library", "bom-ref": f"pkg:deb/debian/ca-certificates@{ca_version}",
    "name": "ca-certificates", "version": ca_version, "purl": f"pkg:deb/debian/ca-certificates@{ca_version}",
    "description": "/etc/ssl/certs/ca-certificates.crt, from Debian's package",
    "licenses": [{"expression": "GPL-2.0-or-later AND MPL-2.0"}],
}
image = {
    "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
    "metadata": {
        "timestamp": b["metadata"].get("timestamp"),
        "tools": b["metadata"].get("tools"),
        "component": {
            "type": "container", "bom-ref": image_ref, "name": f"{repository}", "version": version,
            "purl": image_ref, "hashes": [{"alg": "SHA-256", "content": digest.split(":", 1)[1]}],
            "licenses": [{"expression": "Apache-2.0"}],
        },
    },
    "components": [app, ca] + b["components"],
    "dependencies": [{"ref": image_ref, "dependsOn": [app["bom-ref"], ca["bom-ref"]]}] + b.get("dependencies", []),
}
image["metadata"] = {k: v for k, v in image["metadata"].items() if v is not None}
json.dump(image, open(out, "w"), indent=2)
print(f"  sbom:    {out} ({len(image['components'])} components), {binary_path}")
PY
