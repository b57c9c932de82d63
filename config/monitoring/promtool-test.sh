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
