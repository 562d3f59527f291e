#!/usr/bin/env bash
# bench/rolling_restart.sh [--orders N] [--accounts 8|4] [--restarts N] [--every S] [--rate N] [--latency-ms MS]
#
# A long rolling restart (issue 13) on a real broker: 3 tillstream-orders in
# one group on an 8-partition topic, the simulator at Klaviyo's real limits
# (150 Bulk Create Events requests/min per account: 2,500 events/s at 1,000
# per request), answering after --latency-ms (default 300, about what a
# Bulk Create Events request takes at Klaviyo; with 0 nothing is on the
# wire long enough at a revoke to be re-sent). N orders (default 200,000; gen_volume.py, 50,000 customers)
# are produced while they are consumed, --rate orders/s (default 1,500:
# about 6,300 events/s, a third of the 8-account ceiling), and every
# --every s (default 20) one member in turn is SIGTERMed (exit 0 expected)
# and started again, --restarts times (default 6: two rounds). Each restart
# is two rebalances (the member leaves, the member joins).
# Accounts: --accounts 8 (default; one outlet each, acct-100 ... acct-401) or
# 4 (two outlets each, gen_volume's brand-0..3); at 8 the ceiling is
# 20,000 events/s, so the run is bound by the production rate, not by
# Klaviyo, and 200,000 orders take a few minutes.
# Reports: every partition committed to its end (a fresh --exit-at-end run of
# the group consumes nothing); the longest time a member owned lag while it
# completed nothing (1 s samples of each member's /metrics:
# tillstream_consumer_lag_records > 0 and tillstream_events_accepted_total
# unchanged); events lost against the dry run of the same records (goal 0);
# events re-sent (the simulator's duplicates_ignored) as % of the events
# sent, in total and per rebalance.
. "$(dirname "$0")/lib/common.sh"
orders=200000 naccts=8 restarts=6 every=20 rate=1500 latency=300
bench_args "[--orders N] [--accounts 8|4] [--restarts N] [--every S] [--rate N] [--latency-ms MS]" --orders orders \
  --accounts naccts --restarts restarts --every every --rate rate --latency-ms latency -- "$@"
need_bins tillstream-orders tillstream-klaviyo-sim
broker
gen_volume 50000 "$orders" 13
topic "bench.customers.$sfx" 3 compact
topic "bench.orders.$sfx" 8
topic "bench.deadletter.$sfx" 1
kcat -b "$bs" -P -t "bench.customers.$sfx" -K $'\t' -X linger.ms=50 -l "$work/data/customers.kv"

accts="" spec=""
if [ "$naccts" = 8 ]; then
  for o in 100 101 200 201 300 301 400 401; do accts+="acct-$o "; spec+="acct-$o:$o "; done
else
  for i in 0 1 2 3; do accts+="brand-$i "; spec+="brand-$i:$((100 * (i + 1))),$((100 * (i + 1) + 1)) "; done
fi
sim_start sim "$accts" --events-summary-only --latency-ms "$latency"
write_config "$work/ts.json" "$sim_port" "$spec" '{"routing": {"default_online_outlet": null}}'
log "dry run of the same records (ground truth)"
"$bin/tillstream-orders" --config "$work/ts.json" --dry-run --input "$work/data/orders.jsonl" \
  --customers "$work/data/customers.jsonl" >"$work/dry.jsonl"
python3 "$root/bench/lib/drycount.py" "$work/dry.jsonl" >"$work/want.json"
rm -f "$work/dry.jsonl"
want=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1])).values()))' "$work/want.json")

mkdir -p "$work/active"
declare -A member
start_member() { # start_member M RUN: the member's log is $work/mM.RUN.log
  "$bin/tillstream-orders" --config "$work/ts.json" >"$work/m$1.$2.log" 2>&1 &
  member[$1]=$!
  bench_pids+=($!)
  echo "$2 $work/m$1.$2.log" >"$work/active/m$1"
}
assigned() { grep -q '"message":"assigned [1-9][0-9]* partition' "$1"; }
recorded() { sim_stats "$sim_port" | python3 -c 'import json,sys; print(sum(a["events_recorded"] for a in json.load(sys.stdin)["accounts"].values()))'; }

for m in 0 1 2; do start_member $m 0; done
for _ in $(seq 1 600); do assigned "$work/m0.0.log" && assigned "$work/m1.0.log" && assigned "$work/m2.0.log" && break; sleep 0.1; done

# 1 s samples of every running member: t_ms member run lag accepted
python3 - "$work" >"$work/samples.txt" <<'PY' &
import os, re, sys, time, urllib.request
w = sys.argv[1]
ports = {}
while not os.path.exists(w + "/done"):
    t = int(time.time() * 1000)
    for m in sorted(os.listdir(w + "/active")):
        try:
            run, logf = open(f"{w}/active/{m}").read().split()
        except (OSError, ValueError):
            continue
        if (m, run) not in ports:
            g = re.search(r'"port":(\d+)', open(logf, errors="replace").read(200000))
            if not g: continue
            ports[(m, run)] = g.group(1)
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{ports[(m, run)]}/metrics", timeout=0.5).read().decode()
        except Exception:
            continue
        lag = acc = 0.0
        for ln in body.splitlines():
            if ln.startswith("tillstream_consumer_lag_records{"): lag += float(ln.split()[-1])
            elif ln.startswith("tillstream_events_accepted_total{"): acc += float(ln.split()[-1])
        print(t, m, run, int(lag), int(acc), flush=True)
    time.sleep(max(0.0, 1.0 - (time.time() * 1000 - t) / 1000))
PY
bench_pids+=($!)

# production: $rate orders/s in chunks of one second
split -l "$rate" -d -a 4 "$work/data/orders.kv" "$work/chunk."
( for c in "$work"/chunk.*; do
    s=$(date +%s%N)
    kcat -b "$bs" -P -t "bench.orders.$sfx" -K $'\t' -X linger.ms=20 -l "$c"
    left=$(( 1000 - ($(date +%s%N) - s) / 1000000 ))
    [ $left -gt 0 ] && sleep "0.$(printf '%03d' $left)"
  done; date +%s%3N >"$work/produced" ) &
prod=$!
bench_pids+=($prod)
t_start=$(date +%s%3N)
log "producing $orders orders at $rate/s; $restarts restarts, one every $every s"

run=1
for i in $(seq 0 $((restarts - 1))); do
  sleep "$every"
  m=$((i % 3))
  log "restart $((i + 1)): member $m (SIGTERM)"
  kill -TERM "${member[$m]}"
  set +e; wait "${member[$m]}"; rc=$?; set -e
  [ "$rc" = 0 ] || { echo "bench: member $m exited $rc on SIGTERM" >&2; tail -5 "$(cut -d' ' -f2 "$work/active/m$m")" >&2; exit 1; }
  start_member $m $run
  run=$((run + 1))
done
wait "$prod" 2>/dev/null || true
log "production done; waiting for every event ($want expected)"
deadline=$((SECONDS + 900))
last=-1 still=0
while [ $SECONDS -lt $deadline ]; do
  got=$(recorded)
  [ "$got" -ge "$want" ] && break
  if [ "$got" = "$last" ]; then still=$((still + 1)); else still=0; fi
  [ $still -ge 120 ] && { log "no progress for 120 s at $got events"; break; }
  last=$got
  sleep 1
done
t_end=$(date +%s%3N)
sleep 3 # a last sample of each member
touch "$work/done"
for m in 0 1 2; do stop_pid "${member[$m]}"; done
log "fresh --exit-at-end run of the group: nothing may be left"
timeout 120 "$bin/tillstream-orders" --config "$work/ts.json" --exit-at-end >"$work/check.log" 2>&1 || true
sim_stats "$sim_port" >"$work/stats.json"
cat "$work"/m[0-9]*.log >"$work/all-members.log"
python3 - "$work" "$orders" "$restarts" "$every" "$rate" "$naccts" "$t_start" "$t_end" "$latency" <<'PY'
import collections, json, re, sys
w, orders, restarts, every, rate, naccts, t0, t1, latency = sys.argv[1], *map(int, sys.argv[2:])
want = collections.Counter(json.load(open(w + "/want.json")))
st = json.load(open(w + "/stats.json"))["accounts"]
rec = sum(a["events_recorded"] for a in st.values())
dup = sum(a["duplicates_ignored"] for a in st.values())
lost = sum(max(0, want[a] - st.get(a, {}).get("events_recorded", 0)) for a in want)
sent = rec + dup
rebalances = 2 * restarts
check = open(w + "/check.log").read()
m = re.search(r'"message":"summary","consumed":(\d+),', check)
left = int(m.group(1)) if m else -1
# idle with lag: per (member, run), consecutive samples with lag > 0 and no new accepted events
samples = collections.defaultdict(list)
for ln in open(w + "/samples.txt"):
    t, mem, run, lag, acc = ln.split()
    samples[(mem, run)].append((int(t), int(lag), int(acc)))
worst, worst_at = 0, None
for key, ss in samples.items():
    start = None
    for (ta, la, aa), (tb, lb, ab) in zip(ss, ss[1:]):
        if la > 0 and lb > 0 and ab == aa:
            start = ta if start is None else start
            if tb - start > worst: worst, worst_at = tb - start, (key, (start - t0) / 1000)
        else:
            start = None
drains = []
for l in open(w + "/all-members.log", errors="replace"):
    if '"revoke: ' in l:
        try: drains.append(json.loads(l))
        except ValueError: pass
warn = sum(1 for d in drains if d["level"] == "warn")
waited = [d.get("waited_ms", 0) for d in drains]
print(f"rolling restart: 3 members, {orders:,} orders ({sum(want.values()):,} events) produced at {rate:,}/s, "
      f"{naccts} accounts at Klaviyo's real limits ({latency} ms a request), {restarts} restarts one every {every} s ({rebalances} rebalances); "
      f"{(t1 - t0) / 1000:.0f} s from the first record to the last event")
print(f"  committed to the end: {'yes' if left == 0 else 'NO'} (a fresh --exit-at-end run consumed {left})")
if worst_at:
    print(f"  longest time a member owned lag and completed nothing: {worst / 1000:.1f} s (member {worst_at[0][0]} run {worst_at[0][1]}, at {worst_at[1]:.0f} s) (goal < 60 s)")
else:
    print("  longest time a member owned lag and completed nothing: 0 s")
print(f"  lost {lost} (goal 0); recorded {rec:,} of {sum(want.values()):,}")
print(f"  re-sent {dup:,} events: {100 * dup / max(1, sent):.3f} % of the {sent:,} sent, "
      f"{100 * dup / max(1, sent) / rebalances:.4f} % per rebalance (goal < 1 %)")
print(f"  revoke drains: {len(drains)}, longest {max(waited or [0])} ms, {warn} left parts on the wire")
PY
