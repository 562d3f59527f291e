#!/usr/bin/env bash
# bench/backfill_rss.sh [--sizes "N1 N2 ..."] [--set JSON]
#
# Does the process's RSS grow with the backlog? Runs bench/backfill_share.sh
# (8 accounts at Klaviyo's real limits, --replay-from earliest, a throttled
# backfill: the lanes are full and partitions pause) once per backlog size
# (default 200,000 and 500,000 orders: 0.84 M and 2.1 M events, 42 s and
# 105 s at the ceiling), one after the other, and prints per size the peak
# RSS (VmHWM), the records in flight and parts queued at the peak, and the
# documented bound for the config (docs/consumers.md, "What sets the memory
# bound"; bench/lib/membound.py). --set is passed on (config section updates).
# Exit 1 when a peak exceeds the bound.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sizes="200000 500000" setj='{}'
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --set) setj=$2; shift 2 ;;
    *) echo "usage: $0 [--sizes \"N1 N2 ...\"] [--set JSON]" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d "${TMPDIR:-/tmp}/ts-bench-rss.XXXXXX")
trap 'rm -rf "$out"' EXIT
for n in $sizes; do
  echo "[$(date -u +%H:%M:%S)] backlog of $n orders" >&2
  "$here/backfill_share.sh" --orders "$n" --set "$setj" >"$out/$n.txt" || { cat "$out/$n.txt"; exit 1; }
done
echo "RSS of tillstream-orders during a throttled backfill, 8 accounts at real limits, by backlog (config updates: $setj):"
echo
echo "| backlog orders | events | run s | share of the ceiling | peak RSS (VmHWM) MiB | at the peak | documented bound MiB | peak / bound |"
echo "|---:|---:|---:|---:|---:|---|---:|---:|"
ok=0
for n in $sizes; do
  python3 - "$out/$n.txt" "$n" <<'PY' || ok=1
import re, sys
t = open(sys.argv[1]).read()
ev = re.search(r"\(([\d,]+) events\) across", t).group(1)
share, span = re.search(r"whole run: ([\d.]+) %.*over ([\d.]+) s", t).groups()
hwm = float(re.search(r"VmHWM ([\d.]+) MiB", t).group(1))
at = re.search(r"\): ([\d,]+) records in flight \(max ([\d,]+)\), ([\d,]+) parts queued in the lanes \(max ([\d,]+)\), (\d+) partitions paused", t)
b = float(re.search(r"documented bound for this config \(docs/consumers.md\): (\d+) MiB", t).group(1))
print(f"| {int(sys.argv[2]):,} | {ev} | {span} | {share} % | {hwm:.1f} | {at.group(1)} records in flight, {at.group(3)} parts queued, {at.group(5)} partitions paused | {b:.0f} | {100 * hwm / b:.0f} % |")
sys.exit(0 if hwm <= b else 1)
PY
done
echo
for n in $sizes; do echo "--- $n orders:"; sed -n '/^backfill,/,/^RSS over time/p' "$out/$n.txt"; done
exit $ok
