#!/usr/bin/env bash
# Brings up a local control plane from the real components (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) with KWOK fake nodes, plus Prometheus scraping the
# scheduler. Prints `export` lines for the environment the tests read.
# Usage: e2e/scripts/cluster-up.sh [name]   (tear down with cluster-down.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/versions.env"
name=${1:-${CLUSTER_NAME:-mo-e2e}}
state=${E2E_STATE:-$here/../target/e2e}
mkdir -p "$state"
state=$(cd "$state" && pwd)
export KWOK_WORKDIR="$state/kwok" PATH="$E2E_BIN:$PATH" KWOK_KUBECTL_BINARY="$E2E_BIN/kubectl"
"$here/scripts/build-binaries.sh" >/dev/null

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
sched_port=$(free_port)

# The API server's audit log is the ground truth the tests check the operator's writes against:
# every write to what the operator touches (targets, the pods a canary makes again, upgrades,
# its Lease, Events, its history ConfigMap), by whom (an operator replica impersonates its
# ServiceAccount with the extra `instance`), when, and what it asked. Nothing else is logged.
audit_policy="$state/audit-policy-$name.yaml"
cat > "$audit_policy" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Request
    verbs: [create, update, patch, delete, deletecollection]
    resources:
      - {group: apps, resources: [daemonsets, deployments, statefulsets]}
      - {group: maintenance.dev, resources: [maintenanceupgrades, maintenanceupgrades/status]}
      - {group: events.k8s.io, resources: [events]}
    userGroups: ["system:masters"]
  - level: Request
    verbs: [delete, deletecollection]
    resources:
      - {group: "", resources: [pods]}
    userGroups: ["system:masters"]
  - level: Request
    verbs: [create, update, patch, delete]
    namespaces: [maintenance-operator]
    resources:
      - {group: coordination.k8s.io, resources: [leases]}
      - {group: "", resources: [configmaps]}
  - level: None
YAML
kwokctl delete cluster --name "$name" >/dev/null 2>&1 || true
kwokctl create cluster --name "$name" --runtime binary --kubeconfig "" --wait 3m \
  --kube-audit-policy "$audit_policy" \
  --kube-apiserver-binary "$E2E_BIN/kube-apiserver" \
  --kube-controller-manager-binary "$E2E_BIN/kube-controller-manager" \
  --kube-scheduler-binary "$E2E_BIN/kube-scheduler" --kube-scheduler-port "$sched_port" \
  --kwok-controller-binary "$E2E_BIN/kwok" --etcd-binary "$E2E_BIN/etcd" \
  --disable-qps-limits > "$state/kwokctl-$name.log" 2>&1 || { cat "$state/kwokctl-$name.log" >&2; exit 1; }
kubeconfig="$KWOK_WORKDIR/clusters/$name/kubeconfig.yaml"
pki="$KWOK_WORKDIR/clusters/$name/pki"

# Prometheus runs beside the cluster (not through kwokctl) so tests can stop and start it.
prom_dir="$state/prometheus-$name"
rm -rf "$prom_dir" && mkdir -p "$prom_dir/data"
cat > "$prom_dir/prometheus.yml" <<YAML
# The query log shows the queries as the operator sent them (its placeholders filled in).
global: {scrape_interval: 2s, scrape_timeout: 2s, query_log_file: $prom_dir/queries.log}
scrape_configs:
  - job_name: kube-scheduler
    scheme: https
    tls_config: {insecure_skip_verify: true, cert_file: $pki/admin.crt, key_file: $pki/admin.key}
    static_configs: [{targets: ["127.0.0.1:$sched_port"]}]
YAML
# Its port is drawn once the cluster's components hold theirs, and drawn again if something took
# it before Prometheus could bind it (a port free a moment ago may be an outgoing connection's).
for attempt in 1 2 3; do
  prom_port=${PROM_PORT:-$(free_port)}
  "$here/scripts/prometheus.sh" start "$prom_dir" "$prom_port" >&2 && break
  "$here/scripts/prometheus.sh" stop "$prom_dir" >&2
  rm -rf "$prom_dir/data" && mkdir -p "$prom_dir/data"
  if [ -n "${PROM_PORT:-}" ] || [ "$attempt" -eq 3 ]; then exit 1; fi
  echo "Prometheus could not start on port $prom_port; trying another" >&2
done

cat <<ENV
export KUBECONFIG=$kubeconfig
export E2E_CLUSTER=$name
export E2E_BIN=$E2E_BIN
export HELM_BIN=$HELM_BIN
export KWOK_WORKDIR=$KWOK_WORKDIR
export PROMETHEUS_URL=http://127.0.0.1:$prom_port
export PROMETHEUS_DIR=$prom_dir
ENV
