#!/usr/bin/env bash
# bench/backfill_share.sh [--orders N] [--customers N] [--timeline] [--proxy] [--set JSON] [--sim 'FLAGS']
#
# Backfill share of the ceiling: N JSON orders (default 300,000; gen_volume.py,
# 8 outlets) in an 8-partition topic of a real broker, replayed with
# `tillstream-orders --replay-from earliest` (default config otherwise) into
# tillstream-klaviyo-sim at Klaviyo's real limits, 8 accounts (one outlet each:
# acct-100 ... acct-401). The ceiling is 150 requests/min x 1,000 events =
# 2,500 events/s per account, 20,000 for 8. The timeline and the run's span
# come from /__sim/stats polled every second (so the span is +-1 s); with
# --proxy, tillstream talks through the recording proxy (bench/lib/recproxy.py)
# and the timeline has every request to the millisecond (the proxy's hop costs
# a few points of share at this rate: 65 % against 72 % in back-to-back runs).
# Reports: share of 8 x 2,500 events/s over the whole run (first request to
# last 202) and per account (over the whole run, and over its own first to
# last request); events lost (the dry run of the same records is the ground
# truth) and duplicated (the simulator's duplicates_ignored); RSS over time
# (1 s samples of /proc, VmHWM); then the request timeline (--timeline: every
# second; otherwise 5-second rows). Memory: every second beside RSS the
# consumer's /metrics (records in flight, parts queued in the lanes, paused
# partitions); the peak row, and the bound of docs/consumers.md ("What sets
# the memory bound") computed from the run's config. --set JSON merges
# section updates into the config (e.g. '{"kafka":
# {"queued.max.messages.kbytes": "16384"}, "klaviyo": {"max_queued_events":
# 10000}}'); bench/backfill_rss.sh runs this script for several backlogs.
# --sim 'FLAGS': more tillstream-klaviyo-sim flags (e.g. --sim '--latency-ms 2000':
# a Klaviyo slow to answer).
. "$(dirname "$0")/lib/common.sh"
orders=300000 customers=50000 every=5 direct=1 setj='{}' simflags=
bench_args "[--orders N] [--customers N] [--timeline] [--proxy] [--set JSON] [--sim 'FLAGS']" --orders orders \
  --customers customers --timeline every=1 --proxy direct=0 --direct direct=1 --set setj --sim simflags -- "$@"
need_bins tillstream-orders tillstream-klaviyo-sim
need_gnu_time
broker
gen_volume "$customers" "$orders" 11
topic "bench.customers.$sfx" 3 compact
topic "bench.orders.$sfx" 8
topic "bench.deadletter.$sfx" 1
kcat -b "$bs" -P -t "bench.customers.$sfx" -K $'\t' -X linger.ms=50 -l "$work/data/customers.kv"
kcat -b "$bs" -P -t "bench.orders.$sfx" -K $'\t' -X linger.ms=50 -l "$work/data/orders.kv"

outlets="100 101 200 201 300 301 400 401"
accts="" spec=""
for o in $outlets; do accts+="acct-$o "; spec+="acct-$o:$o "; done
# shellcheck disable=SC2086 # FLAGS are words
sim_start sim "$accts" --events-summary-only $simflags
if [ $direct = 1 ]; then px_port=$sim_port px_pid=; else proxy_start px "$sim_port"; fi
upd=$(python3 -c 'import json,sys; u = json.loads(sys.argv[1]); u.setdefault("routing", {})["default_online_outlet"] = None; print(json.dumps(u))' "$setj")
write_config "$work/ts.json" "$px_port" "$spec" "$upd"
python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); print("config:", json.dumps({k: c.get(k) for k in ("kafka", "klaviyo", "consumer")}))' "$work/ts.json" >&2
log "dry run of the same records (ground truth)"
"$bin/tillstream-orders" --config "$work/ts.json" --dry-run --input "$work/data/orders.jsonl" \
  --customers "$work/data/customers.jsonl" >"$work/dry.jsonl"
python3 "$root/bench/lib/drycount.py" "$work/dry.jsonl" >"$work/want.json"
rm -f "$work/dry.jsonl"

log "replay from earliest"
"$bin/tillstream-orders" --config "$work/ts.json" --replay-from earliest --group "bench-replay-$sfx" \
  >"$work/orders.log" 2>&1 &
# GNU time would hide the pid from the sampler; the peak comes from the samples
# and from the kernel's high-water mark (VmHWM) read before it exits
ts_pid=$!
bench_pids+=($ts_pid)
rss_sampler "$ts_pid" "$work/rss.txt"
( hwm=0; while [ -d "/proc/$ts_pid" ]; do
    h=$(awk '/^VmHWM/ {print $2}' "/proc/$ts_pid/status" 2>/dev/null) && [ -n "$h" ] && hwm=$h
    echo "$hwm" >"$work/hwm.txt"; sleep 0.5
  done ) &
bench_pids+=($!)
( while [ -d "/proc/$ts_pid" ]; do echo "$(date +%s%3N) $(sim_stats "$sim_port")"; sleep 1; done ) >"$work/stats.log" &
bench_pids+=($!)
( for _ in $(seq 1 300); do grep -q '"port":' "$work/orders.log" 2>/dev/null && break; sleep 0.1; done
  ap=$(grep -o '"port":[0-9]*' "$work/orders.log" | head -1 | cut -d: -f2)
  while [ -d "/proc/$ts_pid" ]; do
    r=$(awk '/^VmRSS/ {print $2}' "/proc/$ts_pid/status" 2>/dev/null) || break
    curl -fsS "http://127.0.0.1:$ap/metrics" 2>/dev/null | awk -v t="$(date +%s%3N)" -v r="$r" '
      /^tillstream_inflight_records/ {f = $NF} /^tillstream_lane_queue_parts/ {q += $NF}
      /^tillstream_paused_partitions/ {p = $NF} END {print t, r, f + 0, q + 0, p + 0}'
    sleep 1
  done ) >"$work/mem.txt" &
bench_pids+=($!)
limit=$(( orders / 1000 + 600 ))   # seconds: the ceiling needs orders/4,400 s
for _ in $(seq 1 $((limit * 2))); do [ -d "/proc/$ts_pid" ] || break; sleep 0.5; done
if [ -d "/proc/$ts_pid" ]; then echo "bench: the replay did not finish in $limit s" >&2; stop_pid "$ts_pid"; fi
wait "$ts_pid" 2>/dev/null && rc=0 || rc=$?
[ "$rc" = 0 ] || { echo "bench: tillstream-orders exited $rc" >&2; tail -5 "$work/orders.log" >&2; }
[ -n "$px_pid" ] && stop_pid "$px_pid"
echo "$(date +%s%3N) $(sim_stats "$sim_port")" >>"$work/stats.log"
sim_stats "$sim_port" >"$work/stats.json"
python3 - "$root/bench/lib" "$work" "$accts" "$orders" "$every" "$customers" <<'PY'
import collections, json, sys
sys.path.insert(0, sys.argv[1])
import timeline
w, accts, orders, every = sys.argv[2], sys.argv[3].split(), int(sys.argv[4]), int(sys.argv[5])
want = collections.Counter(json.load(open(w + "/want.json")))
st = json.load(open(w + "/stats.json"))["accounts"]
import os
if os.path.exists(w + "/px.req"):
    reqs = timeline.read_requests(w + "/px.req")
else:  # --direct: synthetic requests from the per-second stats deltas (t = poll time)
    reqs, prev = [], {}
    for ln in open(w + "/stats.log"):
        t, js = ln.split(" ", 1)
        try: acc = json.loads(js)["accounts"]
        except ValueError: continue
        for a, x in acc.items():
            cur = (x["requests"]["total"], x["events_recorded"] + x["duplicates_ignored"], x["requests"].get("429", 0))
            p = prev.get(a, (0, 0, 0)); prev[a] = cur
            nreq, nev, n429 = cur[0] - p[0], cur[1] - p[1], cur[2] - p[2]
            ok = nreq - n429
            for k in range(ok): reqs.append((int(t), int(t), a, 202, nev // ok + (1 if k < nev % ok else 0)))
            for k in range(n429): reqs.append((int(t), int(t), a, 429, 0))
    print("(no proxy: times are the 1 s polls of /__sim/stats; --proxy for every request)")
t0 = min(r[0] for r in reqs); t1 = max(r[1] for r in reqs)
span = (t1 - t0) / 1000
CEIL = 2500.0
tot = sum(st[a]["events_recorded"] for a in accts)
lost = sum(max(0, want[a] - st[a]["events_recorded"]) for a in accts)
dup = sum(st[a]["duplicates_ignored"] for a in accts)
n429 = sum(1 for r in reqs if r[3] == 429)
print(f"backfill, {orders:,} orders ({sum(want.values()):,} events) across 8 accounts, simulator at Klaviyo's real limits:")
print(f"  share of 8 x 2,500 events/s over the whole run: {100 * tot / (span * 8 * CEIL):.1f} % (goal >= 97 %); {tot / span:,.0f} events/s over {span:.1f} s")
rows = []
for a in accts:
    ra = [r for r in reqs if r[2] == a]
    a0, a1 = min(r[0] for r in ra), max(r[1] for r in ra)
    ev = st[a]["events_recorded"]
    rows.append((a, want[a], ev, len(ra), sum(1 for r in ra if r[3] == 429), 100 * ev / (span * CEIL), 100 * ev / ((a1 - a0) / 1000 * CEIL), (a1 - a0) / 1000))
print(f"  per account, own first-to-last request: min {min(r[6] for r in rows):.1f} %, max {max(r[6] for r in rows):.1f} % (goal each >= 95 %)")
print(f"  lost {lost}, duplicated {dup} (goal 0 / 0); requests {len(reqs):,}, 429s {n429}")
rss = [tuple(map(int, l.split())) for l in open(w + "/rss.txt") if l.strip()]
hwm = int(open(w + "/hwm.txt").read().strip() or 0) / 1024
print(f"  RSS: peak {max(r[1] for r in rss) / 1024:.1f} MiB (VmHWM {hwm:.1f} MiB), last sample {rss[-1][1] / 1024:.1f} MiB")
mem = [tuple(map(int, l.split())) for l in open(w + "/mem.txt") if len(l.split()) == 5]
if mem:
    pk = max(mem, key=lambda m: m[1])
    print(f"  at the RSS peak ({pk[1] / 1024:.1f} MiB, t = {(pk[0] - t0) / 1000:.0f} s): {pk[2]:,} records in flight (max {max(m[2] for m in mem):,}), "
          f"{pk[3]:,} parts queued in the lanes (max {max(m[3] for m in mem):,}), {pk[4]} partitions paused")
import membound
cfg = json.load(open(w + "/ts.json"))
b = membound.bound(cfg, n_accounts=len(accts), partitions=8, customers=int(sys.argv[6]))
print(f"  documented bound for this config (docs/consumers.md): {b['total'] / 2**20:.0f} MiB = " +
      " + ".join(f"{k} {v / 2**20:.0f}" for k, v in b.items() if k != "total") +
      f"; peak RSS is {100 * hwm * 2**20 / b['total']:.0f} % of it")
print()
print("| account | events expected | accepted | requests | 429s | share, whole run | share, own span | own span s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for a, wv, ev, nr, t4, s1, s2, sp in rows:
    print(f"| {a} | {wv:,} | {ev:,} | {nr:,} | {t4} | {s1:.1f} % | {s2:.1f} % | {sp:.1f} |")
print()
print("RSS over time (s since the first request: MiB):", ", ".join(f"{(t - t0) // 1000}: {r / 1024:.0f}" for t, r in rss[::10]))
print()
tl = timeline.per_second(reqs, t0, accts)
print(f"Request timeline (t = 0: first request; rows of {every} s; cells: requests/events accepted (429s)):")
timeline.print_timeline(tl, accts, 0, int(span), every)
PY
