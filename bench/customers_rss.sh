#!/usr/bin/env bash
# bench/customers_rss.sh [--customers N] [--seconds S] [--scale X] [--live] [--set JSON]
#
# Memory of tillstream-customers while Klaviyo holds it back: N customers
# (default 300,000; gen_volume.py, 8 home outlets) in an 8-partition topic of
# a real broker, replayed with `tillstream-customers --replay-from earliest`
# into tillstream-klaviyo-sim with every limit x X (default 0.02: 3 profile
# import jobs a minute per account instead of 150), 8 accounts (one outlet
# each), so the lanes fill and partitions pause, as in a Klaviyo slowdown
# during a backfill. Samples every second for S seconds (default 90): RSS
# (and the kernel's VmHWM), the consumer's /metrics (records in flight, parts
# queued in the lanes, paused partitions), customers accepted by the
# simulator; then SIGTERM (or the replay's own end, when the limits let it
# finish first). Prints the peak, what was held at the peak, the documented
# bound for the run's config (docs/consumers.md, "Consent state";
# bench/lib/membound.py), the line RSS = a + b x parts queued fitted over the
# samples, and a row every 10 s. --live: a new group consuming the topic from its start instead of a
# replay, with --exit-at-end, as a first deployment on an existing topic does:
# every customer is decided and its consent state kept and written
# (docs/consumers.md, "Consent state"); a plain replay keeps none. --set JSON
# merges config section updates (e.g. '{"klaviyo": {"max_queued_events":
# 10000}}').
. "$(dirname "$0")/lib/common.sh"
customers=300000 seconds=90 scale=0.02 setj='{}' mode=replay
bench_args "[--customers N] [--seconds S] [--scale X] [--live] [--set JSON]" --customers customers --seconds seconds \
  --scale scale --live mode=live --set setj -- "$@"
need_bins tillstream-customers tillstream-klaviyo-sim
broker
gen_volume "$customers" 1 11
topic "bench.customers.$sfx" 8
topic "bench.state.$sfx" 8 compact   # co-partitioned with the customers topic (docs/consumers.md)
topic "bench.deadletter.$sfx" 1
kcat -b "$bs" -P -t "bench.customers.$sfx" -K $'\t' -X linger.ms=50 -l "$work/data/customers.kv"

outlets="100 101 200 201 300 301 400 401"
accts="" spec=""
for o in $outlets; do accts+="acct-$o "; spec+="acct-$o:$o "; done
sim_start sim "$accts" --events-summary-only --rate-scale "$scale"
upd=$(python3 -c '
import json, sys
u = {"routing": {"default_online_outlet": None},
     "topics": {"customers_state": "bench.state." + sys.argv[2], "suppressions": "bench.suppressions." + sys.argv[2]},
     "customers": {"wait_for_suppressions": False}}
for k, v in json.loads(sys.argv[1]).items():
    u[k] = {**u.get(k, {}), **v} if isinstance(v, dict) else v
print(json.dumps(u))' "$setj" "$sfx")
write_config "$work/ts.json" "$sim_port" "$spec" "$upd"
python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); print("config:", json.dumps({k: c.get(k) for k in ("klaviyo", "consumer", "customers")}))' "$work/ts.json" >&2

if [ "$mode" = live ]; then
  log "live from the topic's start (a new group, --exit-at-end), $seconds s, simulator limits x $scale"
  run=(--exit-at-end)
else
  log "replay from earliest, $seconds s, simulator limits x $scale"
  run=(--replay-from earliest)
fi
"$bin/tillstream-customers" --config "$work/ts.json" "${run[@]}" --group "bench-customers-rss-$sfx" \
  >"$work/customers.log" 2>&1 &
ts_pid=$!
bench_pids+=($ts_pid)
for _ in $(seq 1 300); do grep -q '"port":' "$work/customers.log" 2>/dev/null && break; sleep 0.1; done
ap=$(grep -o '"port":[0-9]*' "$work/customers.log" | head -1 | cut -d: -f2)
[ -n "$ap" ] || { echo "bench: no admin port in the log" >&2; tail -5 "$work/customers.log" >&2; exit 1; }
end=$(( $(date +%s) + seconds ))
while [ -d "/proc/$ts_pid" ] && [ "$(date +%s)" -lt "$end" ]; do
  st=$(awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {print r + 0, h + 0}' "/proc/$ts_pid/status" 2>/dev/null) || break
  m=$(curl -fsS "http://127.0.0.1:$ap/metrics" 2>/dev/null | awk '
      /^tillstream_inflight_records/ {f = $NF} /^tillstream_lane_queue_parts/ {q += $NF}
      /^tillstream_paused_partitions/ {p = $NF} END {print f + 0, q + 0, p + 0}') || m="0 0 0"
  acc=$(sim_stats "$sim_port" | python3 -c 'import json,sys; a = json.load(sys.stdin)["accounts"]; print(sum(x.get("profiles", 0) for x in a.values()))' 2>/dev/null || echo 0)
  echo "$(date +%s%3N) $st $m $acc" >>"$work/mem.txt"
  sleep 1
done
if [ -d "/proc/$ts_pid" ]; then
  stop_pid "$ts_pid"
elif ! wait "$ts_pid" || { [ "$mode" = replay ] && ! grep -q '"replay complete"' "$work/customers.log"; }; then
  # a run may finish first (the limits not holding it back): the replay complete, or --exit-at-end with exit 0
  echo "bench: tillstream-customers ended before the end of the topic" >&2; tail -5 "$work/customers.log" >&2; exit 1
fi
python3 - "$work/mem.txt" "$customers" "$scale" "$(machine)" "$setj" "$mode" "$root/bench/lib" "$work/ts.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[7])
import membound
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 7]
t0 = rows[0][0]
pk = max(rows, key=lambda r: r[1])
what = "replay" if sys.argv[6] == "replay" else "live run (new group, from the start)"
print(f"tillstream-customers, {what} of {int(sys.argv[2]):,} customers, 8 accounts, simulator limits x {sys.argv[3]}, "
      f"{(rows[-1][0] - t0) / 1000:.0f} s ({sys.argv[4]}; config updates {sys.argv[5]}):")
print(f"  peak RSS {pk[1] / 1024:.1f} MiB (VmHWM {max(r[2] for r in rows) / 1024:.1f} MiB) at t = {(pk[0] - t0) / 1000:.0f} s: "
      f"{pk[3]:,} records in flight, {pk[4]:,} parts queued, {pk[5]} partitions paused")
print(f"  max records in flight {max(r[3] for r in rows):,}, max parts queued {max(r[4] for r in rows):,}; "
      f"profiles accepted by the simulator at the end {rows[-1][6]:,}")
b = membound.customers_bound(json.load(open(sys.argv[8])), int(sys.argv[2]))
hwm = max(r[2] for r in rows) * 1024
print(f"  documented bound for this config (docs/consumers.md): {b['total'] / 2**20:.0f} MiB = " +
      " + ".join(f"{k} {v / 2**20:.0f}" for k, v in b.items() if k != "total") +
      f"; VmHWM is {100 * hwm / b['total']:.0f} % of it")
xs = [r[4] for r in rows]; ys = [r[1] * 1024 for r in rows]
n = len(rows); mx = sum(xs) / n; my = sum(ys) / n
sxx = sum((x - mx) ** 2 for x in xs)
if sxx > 0:
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    print(f"  fit over {n} samples: RSS = {(my - b * mx) / 2**20:.0f} MiB + {b:,.0f} B x parts queued")
print()
print("| t s | RSS MiB | records in flight | parts queued | paused partitions | profiles accepted |")
print("|---:|---:|---:|---:|---:|---:|")
for r in rows[::10] + ([rows[-1]] if (len(rows) - 1) % 10 else []):
    print(f"| {(r[0] - t0) / 1000:.0f} | {r[1] / 1024:.0f} | {r[3]:,} | {r[4]:,} | {r[5]} | {r[6]:,} |")
PY
