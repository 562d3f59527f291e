#!/usr/bin/env bash
# The LIVE /metrics output of the admin listener (ts_admin over HTTP, served
# by unit.test_metrics from a registry with counters, labelled gauges, a
# labelled histogram and escaped label values) passes `promtool check
# metrics` (Debian's prometheus package). Needs no Kafka; the Kafka-backed
# check of a running tillstream-orders is integration/0530.
set -euo pipefail
command -v promtool >/dev/null || { echo "promtool missing (scripts/setup.sh installs prometheus)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TS_METRICS_DUMP="$work/metrics.txt" "$TS_BIN_DIR/test_metrics" >"$work/test.log" 2>&1 || { cat "$work/test.log" >&2; exit 1; }
[ -s "$work/metrics.txt" ] || { echo "test_metrics wrote no metrics dump" >&2; exit 1; }
grep -q '^# TYPE t_request_seconds histogram$' "$work/metrics.txt"
grep -q '^tillstream_ready 1$' "$work/metrics.txt"
grep -q "^tillstream_build_info{version=\"[0-9][^\"]*\"} 1$" "$work/metrics.txt"
for f in process_cpu_seconds_total process_resident_memory_bytes process_open_fds process_start_time_seconds; do
  grep -q "^$f [0-9]" "$work/metrics.txt" || { echo "no $f" >&2; exit 1; }
done
grep -q 'le="0.005"' "$work/metrics.txt"   # canonical bucket labels, as the client libraries print them
promtool check metrics <"$work/metrics.txt"
echo "live /metrics output: promtool ok"
