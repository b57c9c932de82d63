#!/usr/bin/env bash
# start|stop Prometheus for the local cluster: prometheus.sh start|stop DIR [PORT]
set -euo pipefail
cmd=$1 dir=$2
case "$cmd" in
  start)
    port=$3
    echo "$port" > "$dir/port"
    nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
      --web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=1d > "$dir/prometheus.log" 2>&1 &
    echo $! > "$dir/pid"
    for _ in $(seq 1 60); do
      curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && exit 0
      sleep 0.5
    done
    echo "prometheus did not become ready; see $dir/prometheus.log" >&2; exit 1 ;;
  stop)
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid" ;;
  *) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
