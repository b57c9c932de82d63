#!/usr/bin/env bash
# make monitoring-test: the PrometheusRule's rules checked and unit-tested by promtool (Debian's
# prometheus package, which the e2e scripts install), from a copy of its groups.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v promtool >/dev/null; then
  apt-get install -y --no-install-recommends prometheus >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends prometheus >&2; }
fi
python3 -c "import yaml" 2>/dev/null || apt-get install -y --no-install-recommends python3-yaml >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -c '
import sys, yaml
rule = yaml.safe_load(open(sys.argv[1]))
yaml.safe_dump({"groups": rule["spec"]["groups"]}, open(sys.argv[2], "w"), sort_keys=False)
' "$here/prometheus-rule.yaml" "$work/rules.yaml"
cp "$here/tests.yaml" "$work/"
promtool check rules "$work/rules.yaml"
promtool test rules "$work/tests.yaml"

# The chart's optional PodMonitor and PrometheusRule (charts/render.py) are these, exactly: the
# alerts' own {{ $labels }} templates come out of Helm as Prometheus reads them.
source "$here/../../e2e/versions.env"
"$HELM_BIN" template mo "$here/../../charts/maintenance-operator" -n monitoring-test --kube-version 1.36.0 \
  --set monitoring.podMonitor=true --set monitoring.prometheusRule=true \
  --set-json 'monitoring.labels={"release":"kps"}' > "$work/chart.yaml"
python3 - "$here" "$work/chart.yaml" <<'PY'
import sys, yaml
here, rendered = sys.argv[1], sys.argv[2]
chart = {d["kind"]: d for d in yaml.safe_load_all(open(rendered)) if d}
for file in ["podmonitor.yaml", "prometheus-rule.yaml"]:
    want = yaml.safe_load(open(f"{here}/{file}"))
    got = chart.get(want["kind"])
    assert got, f"the chart renders no {want['kind']}"
    assert got["spec"] == want["spec"], f"the chart's {want['kind']} differs from config/monitoring/{file}"
    assert got["metadata"]["labels"]["release"] == "kps", got["metadata"]
    assert got["metadata"]["namespace"] == "monitoring-test", got["metadata"]
print("the chart's PodMonitor and PrometheusRule are config/monitoring's")
PY
