#!/usr/bin/env bash
# bench/live_latency.sh [--seconds S] [--rate R] [--partitions P] [--linger-ms N] [--timeline] [--windows S] [--sim 'FLAGS']
#
# Live tillstream-orders, the sample's (default) config (linger_ms 200),
# against tillstream-klaviyo-sim at Klaviyo's real limits (10/s burst,
# 150/min steady per account for Bulk Create Events), 3 accounts (brand-a
# 101,102; brand-b 201,202; brand-c 301; online orders to 101). tillstream-gen
# produces 2,000 customers and then R orders/s (default 1,000) for S seconds
# (default 150) at a steady rate into a real broker while the consumer runs.
# The recording proxy (bench/lib/recproxy.py) between tillstream and the
# simulator notes when each 202 came back and which unique_ids it carried; the
# order's produce timestamp comes from Kafka (kcat %T, CreateTime), joined on
# the order id (the unique_id up to its first ':') or the refund id. Reports produce -> 202
# latency p50/p99/max per event, and per account the seconds with zero requests
# while at least one of its events was waiting (produced before the second
# began, accepted after it ended); then the per-second request timeline
# (--timeline: every second; otherwise 5-second rows). --windows S (default
# 60 for runs of 600 s or more): behaviour over time, one row per S seconds:
# events produced in it, their p50/p99/max latency, requests, 429s, peak RSS
# (bench/lib/windows.py), and the drift of p99 and RSS over the run.
# --sim 'FLAGS': more tillstream-klaviyo-sim flags, e.g. a Klaviyo that is
# slow to answer: --sim '--latency-ms 300 --spike-rate 0.02 --spike-ms 5000'.
. "$(dirname "$0")/lib/common.sh"
seconds=150 rate=1000 parts=6 linger= every=5 win= simflags=
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --partitions) parts=$2; shift 2 ;;
    --linger-ms) linger=$2; shift 2 ;;
    --timeline) every=1; shift ;;
    --windows) win=$2; shift 2 ;;
    --sim) simflags=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--rate R] [--partitions P] [--linger-ms N] [--timeline] [--windows S] [--sim 'FLAGS']" >&2; exit 2 ;;
  esac
done
[ -n "$win" ] || { [ "$seconds" -ge 600 ] && win=60 || win=0; }
need_bins tillstream-orders tillstream-klaviyo-sim tillstream-gen
broker
topic "bench.customers.$sfx" 3 compact
topic "bench.orders.$sfx" "$parts"
topic "bench.deadletter.$sfx" 1
accts="brand-a brand-b brand-c"
# shellcheck disable=SC2086 # FLAGS are words
sim_start sim "$accts" --events-summary-only $simflags
proxy_start px "$sim_port" --ids "$work/ids.txt"
upd='{}'
[ -n "$linger" ] && upd="{\"klaviyo\": {\"linger_ms\": $linger}}"
write_config "$work/ts.json" "$px_port" "brand-a:101,102 brand-b:201,202 brand-c:301" "$upd"
linger_eff=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["klaviyo"].get("linger_ms", 200))' "$work/ts.json")

"$bin/tillstream-orders" --config "$work/ts.json" >"$work/orders.log" 2>&1 &
ts_pid=$!
bench_pids+=($ts_pid)
rss_sampler "$ts_pid" "$work/rss.txt"
for _ in $(seq 1 300); do grep -q '"port":' "$work/orders.log" && break; sleep 0.1; done
aport=$(grep -o '"port":[0-9]*' "$work/orders.log" | head -1 | cut -d: -f2)
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

n=$((rate * seconds))
log "producing 2,000 customers, then $n orders at $rate/s ($seconds s); linger_ms $linger_eff; simulator flags: ${simflags:-none}"
t_start=$(date +%s%3N)
run_or_die "$work/gen.log" "$bin/tillstream-gen" --customers 2000 --orders "$n" --seed 42 --rate "$rate" --kafka "$bs" \
  --out-customers "$work/customers.jsonl" --out-orders "$work/orders.jsonl" \
  --topic-customers "bench.customers.$sfx" --topic-orders "bench.orders.$sfx" 2>"$work/gen.log"
t_end=$(date +%s%3N)
"$bin/tillstream-orders" --config "$work/ts.json" --dry-run --input "$work/orders.jsonl" \
  --customers "$work/customers.jsonl" >"$work/dry.jsonl"
want=$(python3 "$root/bench/lib/drycount.py" "$work/dry.jsonl" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin).values()))')
log "produced in $(( (t_end - t_start) / 1000 )) s; waiting until the simulator has all $want events of the dry run (at most 180 s)"
for _ in $(seq 1 360); do
  got=$(sim_stats "$sim_port" | python3 -c 'import json,sys; print(sum(a["events_recorded"] for a in json.load(sys.stdin)["accounts"].values()))')
  [ "$got" -ge "$want" ] && break
  sleep 0.5
done
[ "$got" -ge "$want" ] || log "only $got of $want events arrived: the rest count as lost"
stop_pid "$ts_pid"
stop_pid "$px_pid"   # flushes the proxy's logs
kcat -b "$bs" -C -t "bench.orders.$sfx" -e -q -f '%k\t%T\t%s\n' >"$work/produced.txt"
python3 - "$root/bench/lib" "$work" "$accts" "$seconds" "$rate" "$linger_eff" "$every" "$want" "$win" <<'PY'
import collections, sys
sys.path.insert(0, sys.argv[1])
import timeline, windows
w, accts, seconds, rate, linger, every = sys.argv[2], sys.argv[3].split(), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
want, win = int(sys.argv[8]), int(sys.argv[9])
import json
nrec = 0
prod = {}   # order id (and refund id: a refund's events carry it) -> produce timestamp
for ln in open(w + "/produced.txt"):
    p = ln.rstrip("\n").split("\t", 2)
    if len(p) != 3: continue
    prod[p[0]] = int(p[1]); nrec += 1
    rid = (json.loads(p[2]).get("refund") or {}).get("refund_id")
    if rid: prod[rid] = int(p[1])
t0 = min(prod.values())
t_last_prod = max(prod.values())
done = {}   # unique_id -> (first 202 ms, account)
for ln in open(w + "/ids.txt"):
    td, a, u = ln.rstrip("\n").split(" ", 2)
    if u not in done: done[u] = (int(td), a)
lat, per_acct, samples = [], collections.defaultdict(list), []
queued = {a: collections.Counter() for a in accts}   # second -> events waiting the whole second
unjoined = 0
for u, (td, a) in done.items():
    tp = prod.get(u.split(":", 1)[0])
    if tp is None: unjoined += 1; continue
    l = td - tp; lat.append(l); per_acct[a].append(l); samples.append((tp, l))
    s0, s1 = (tp - t0) // 1000 + 1, (td - t0) // 1000   # whole seconds inside (tp, td)
    if s1 > s0 and a in queued:
        queued[a][s0] += 1; queued[a][s1] -= 1
reqs = timeline.read_requests(w + "/px.req")
tl = timeline.per_second(reqs, t0, accts)
def ranges(secs):
    out, i = [], 0
    while i < len(secs):
        j = i
        while j + 1 < len(secs) and secs[j + 1] == secs[j] + 1: j += 1
        out.append(str(secs[i]) if i == j else f"{secs[i]}-{secs[j]}"); i = j + 1
    return ", ".join(out)
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
last = max((td - t0) // 1000 for td, _ in done.values()) if done else 0
idle = {}
for a in accts:
    run, secs = 0, []
    for s in range(0, last + 1):
        run += queued[a].get(s, 0)
        if run > 0 and not tl[a].get(s): secs.append(s)
    idle[a] = secs
n429 = sum(1 for r in reqs if r[3] == 429); nreq = len(reqs)
print(f"live latency, {rate} orders/s for {seconds} s, 3 accounts, simulator at Klaviyo's real limits, linger_ms {linger}:")
print(f"  produce -> 202 p50 {pct(lat, .5) / 1000:.3f} s, p99 {pct(lat, .99) / 1000:.3f} s (goal <= 1 s: {pct(lat, .99) / 1000:.2f}x of it), max {max(lat) / 1000:.3f} s")
print(f"  seconds with zero requests while events were queued: " + ", ".join(f"{a} {len(idle[a])}" for a in accts) + " (goal 0)")
print(f"  events accepted {len(done):,} of the dry run's {want:,} (lost {max(0, want - len(done)):,}; {unjoined} not joined to a produced order), records produced {nrec:,}, requests {nreq:,}, 429s {n429}")
print()
print("| account | events | requests | events/request | p50 s | p99 s | max s | idle-while-queued seconds |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for a in accts:
    ra = [r for r in reqs if r[2] == a]
    ev = sum(r[4] for r in ra if r[3] == 202)
    secs = idle[a]
    span = (f"{len(secs)} (t = {ranges(secs)} s)" if secs else "0")
    print(f"| {a} | {ev:,} | {len(ra):,} | {ev / max(1, sum(1 for r in ra if r[3] == 202)):.0f} | {pct(per_acct[a], .5) / 1000:.3f} | {pct(per_acct[a], .99) / 1000:.3f} | {max(per_acct[a] or [0]) / 1000:.3f} | {span} |")
if win:
    print()
    windows.print_windows(windows.rows(samples, reqs, windows.read_rss(w + "/rss.txt"), t0, win, last), win)
print()
print(f"Request timeline (t = 0: first order produced; rows of {every} s; cells: requests/events accepted (429s)):")
timeline.print_timeline(tl, accts, 0, last, every)
PY
rss=$(awk '{ if ($2 > m) m = $2 } END { printf "%.1f", m / 1024 }' "$work/rss.txt")
echo
echo "tillstream-orders peak RSS (1 s samples): $rss MiB"
