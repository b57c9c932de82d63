#!/usr/bin/env bash
# Builds the real control-plane binaries from Go modules into a versioned cache outside the repo:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes), etcd, kwok, kwokctl.
# Skips everything that is already built, so a second run takes a second.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/versions.env"
mkdir -p "$E2E_BIN"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
missing=()
for b in "${k8s_bins[@]}"; do [ -x "$E2E_BIN/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -gt 0 ]; then
  mod="$here/gomod/$K8S_GOMOD"
  if [ ! -f "$mod/go.sum" ]; then
    # k8s.io/kubernetes replaces its staging modules with local paths, which a dependent module
    # cannot see: pin each one to the matching v0.X.Y, derived from that release's own go.mod.
    echo "creating the Kubernetes wrapper module for $K8S_VERSION" >&2
    rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
    go mod init local/k8sbin >/dev/null 2>&1
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
    for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod"); do
      go mod edit -replace="$m=$m@$K8S_STAGING_VERSION"
    done
    grep '^godebug' "$gomod" >> go.mod || true
    for c in "${k8s_bins[@]}"; do go get -tool "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"; done
  fi
  cd "$mod"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  v="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
  v="$v -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  v="$v -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z"
  ldflags="-s -w $v ${v//component-base\/version/client-go\/pkg\/version}"
  for b in "${missing[@]}"; do
    echo "building $b $K8S_VERSION (cold: several minutes each)" >&2
    go build -trimpath -ldflags "$ldflags" -o "$E2E_BIN/$b" "k8s.io/kubernetes/cmd/$b"
  done
fi

if [ ! -x "$E2E_BIN/etcd" ]; then
  # etcd's server module has local replace directives too: build it from a wrapper module of its own
  # so its dependencies stay out of Kubernetes' version selection.
  mod="$here/gomod/etcd"
  if [ ! -f "$mod/go.sum" ]; then
    rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
    go mod init local/etcdbin >/dev/null 2>&1
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  fi
  cd "$mod"
  echo "building etcd $ETCD_VERSION" >&2
  go build -trimpath -ldflags "-s -w" -o "$E2E_BIN/etcd" go.etcd.io/etcd/server/v3
fi

for b in kwok kwokctl; do
  if [ ! -x "$E2E_BIN/$b" ]; then
    echo "building $b $KWOK_VERSION" >&2
    GOBIN="$E2E_BIN" GOFLAGS= go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/$b@$KWOK_VERSION"
  fi
done

if ! command -v prometheus >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus ]; then
  echo "installing prometheus from Debian" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo=sudo; fi
  $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Debian's package starts a system service; the tests run their own.
  $sudo systemctl disable --now prometheus >/dev/null 2>&1 || $sudo service prometheus stop >/dev/null 2>&1 || true
fi
if ! command -v lua5.4 >/dev/null || ! lua5.4 -e 'require("dkjson")' >/dev/null 2>&1; then
  # The Argo CD health check (config/argocd/health.lua) runs on the statuses the e2e tests see.
  echo "installing lua5.4 and lua-dkjson from Debian" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo=sudo; fi
  $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends lua5.4 lua-dkjson >/dev/null
fi
if [ ! -x "$HELM_BIN" ]; then
  echo "building helm $HELM_VERSION" >&2
  GOBIN="$(dirname "$HELM_BIN")" GOFLAGS= go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
echo "$E2E_BIN"
