#!/usr/bin/env bash
# bench/members_share.sh [--members M] [--seconds S] [--orders N] [--partitions P] [--skew] [--timeline]
#
# M members (default 3) of one tillstream-orders group share 2 Klaviyo accounts
# at Klaviyo's real limits (tillstream-klaviyo-sim: 10/s burst, 150/min steady
# per account for Bulk Create Events, counted per account whatever the member:
# a ceiling of 2,500 events/s per account). N JSON orders (gen_volume.py,
# default enough for S + 60 s at the ceiling, S default 180) in a P-partition
# topic (default 6) of a real broker are the backlog; the members start
# together on it (default config: `consumer.c` starts a new group at the
# earliest offset) and each sizes its budget as owned / all partitions. Every
# member talks to the simulator through its own recording proxy
# (bench/lib/recproxy.py), so each request is logged with its member, account,
# status and events. The window is S seconds from the first request; then the
# members are stopped.
# Accounts: acct-a = outlets 100,101,200,201; acct-b = 300,301,400,401 (orders
# keyed by order id: every partition carries both accounts). --skew puts
# acct-b's orders alone in partition 0 (acct-a's round-robin over the others),
# so one member holds all of acct-b's backlog at its share of the account:
# the share model's known limit (docs/delivery.md, "Scale-out").
# Reports, over the window: each account's accepted events / (S x 2,500)
# (goal >= 95 %), 429s as % of requests (goal < 0.5 %), per account the
# longest interval without a request while its events were queued (goal
# < 10 s; the backlog outlasting the window is checked), per member its
# requests, events and peak RSS; then a request timeline (10 s rows;
# --timeline: every second).
. "$(dirname "$0")/lib/common.sh"
members=3 seconds=180 orders= parts=6 skew=0 every=10
bench_args "[--members M] [--seconds S] [--orders N] [--partitions P] [--skew] [--timeline]" --members members \
  --seconds seconds --orders orders --partitions parts --skew skew=1 --timeline every=1 -- "$@"
# ~4.19 events per order (gen_volume.py), 98.5 % of them routed to one of the 2 accounts
[ -n "$orders" ] || orders=$(( (seconds + 60) * 2 * 2500 * 100 / 410 ))
need_bins tillstream-orders tillstream-klaviyo-sim
broker
log "generating $orders orders, 50000 customers (gen_volume.py)"
python3 "$peers/gen_volume.py" "$work/data" 50000 "$orders" 13
python3 - "$work/data" "$skew" "$parts" <<'PY'
import json, sys
d, skew, parts = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
home = {}
with open(f"{d}/customers.kv", "w") as out:
    for ln in open(f"{d}/customers.jsonl"):
        c = json.loads(ln)
        home[c["customer_id"]] = c.get("home_outlet_id")
        out.write(f"{c['customer_id']}\t{ln.strip()}\n")
B = {"300", "301", "400", "401"}
# default: every order keyed by order id (the producer's hash spreads both
# accounts over all partitions); --skew: acct-b's orders in partition 0 and
# everything else round-robin over partitions 1..P-1, so partition 0 carries
# acct-b alone (no other account's records ahead of it in that partition)
files = {p: open(f"{d}/orders.p{p}", "w") for p in range(parts)} if skew else {}
with open(f"{d}/orders.kv", "w") as out:
    k = 0
    for ln in open(f"{d}/orders.jsonl"):
        o = json.loads(ln)
        rec = f"{o['order_id']}\t{ln.strip()}\n"
        if not skew:
            out.write(rec)
            continue
        outlet = (o.get("customer") or {}).get("home_outlet_id") or home.get(o.get("customer_id"))
        if outlet in B:
            files[0].write(rec)
        else:
            files[1 + k % (parts - 1)].write(rec)
            k += 1
PY
topic "bench.customers.$sfx" 3 compact
topic "bench.orders.$sfx" "$parts"
topic "bench.deadletter.$sfx" 1
kcat -b "$bs" -P -t "bench.customers.$sfx" -K $'\t' -X linger.ms=50 -l "$work/data/customers.kv"
[ -s "$work/data/orders.kv" ] && kcat -b "$bs" -P -t "bench.orders.$sfx" -K $'\t' -X linger.ms=50 -l "$work/data/orders.kv"
for p in $(seq 0 $((parts - 1))); do
  [ -s "$work/data/orders.p$p" ] && kcat -b "$bs" -P -t "bench.orders.$sfx" -p "$p" -K $'\t' -X linger.ms=50 -l "$work/data/orders.p$p"
done

accts="acct-a acct-b"
spec="acct-a:100,101,200,201 acct-b:300,301,400,401"
sim_start sim "$accts" --events-summary-only
write_config "$work/dry.json" 1 "$spec" '{"routing": {"default_online_outlet": null}}'
log "dry run of the same records (events per account)"
"$bin/tillstream-orders" --config "$work/dry.json" --dry-run --input "$work/data/orders.jsonl" \
  --customers "$work/data/customers.jsonl" >"$work/dry.jsonl"
python3 "$root/bench/lib/drycount.py" "$work/dry.jsonl" >"$work/want.json"
rm -f "$work/dry.jsonl"

mpids=()
for m in $(seq 1 "$members"); do
  proxy_start "px$m" "$sim_port"
  port_var="px${m}_port"
  write_config "$work/ts$m.json" "${!port_var}" "$spec" '{"routing": {"default_online_outlet": null}}'
done
log "starting $members members of one group on the backlog"
for m in $(seq 1 "$members"); do
  "$bin/tillstream-orders" --config "$work/ts$m.json" >"$work/orders$m.log" 2>&1 &
  mpids+=($!)
  bench_pids+=($!)
  rss_sampler "$!" "$work/rss$m.txt"
done
# the window starts at the first request of any member
t0=
for _ in $(seq 1 1200); do
  for m in $(seq 1 "$members"); do
    [ -s "$work/px$m.req" ] && t0=$(awk 'NR == 1 {print $1}' "$work/px$m.req") && break
  done
  [ -n "$t0" ] && break
  sleep 0.1
done
[ -n "$t0" ] || { echo "bench: no request in 120 s" >&2; tail -5 "$work/orders1.log" >&2; exit 1; }
log "first request; running the window of $seconds s"
end=$(( t0 + seconds * 1000 ))
while [ "$(date +%s%3N)" -lt $((end + 2000)) ]; do
  for p in "${mpids[@]}"; do [ -d "/proc/$p" ] || { echo "bench: member $p exited" >&2; exit 1; }; done
  sleep 1
done
for m in $(seq 1 "$members"); do
  awk '/^VmHWM/ {print $2}' "/proc/${mpids[$((m - 1))]}/status" >"$work/hwm$m.txt"
done
sim_stats "$sim_port" >"$work/stats.json"
for p in "${mpids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${mpids[@]}"; do wait "$p" 2>/dev/null || true; done
for m in $(seq 1 "$members"); do pv="px${m}_pid"; stop_pid "${!pv}"; done
python3 - "$root/bench/lib" "$work" "$accts" "$members" "$seconds" "$t0" "$orders" "$parts" "$skew" "$every" <<'PY'
import collections, json, sys
sys.path.insert(0, sys.argv[1])
import timeline
w, accts, M, S, t0 = sys.argv[2], sys.argv[3].split(), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
orders, parts, skew, every = int(sys.argv[7]), int(sys.argv[8]), sys.argv[9] == "1", int(sys.argv[10])
t1 = t0 + S * 1000
CEIL = 2500.0
want = collections.Counter(json.load(open(w + "/want.json")))
reqs = []  # (t_recv, t_done, account, status, events, member)
for m in range(1, M + 1):
    reqs += [r + (m,) for r in timeline.read_requests(f"{w}/px{m}.req")]
reqs.sort()
win = [r for r in reqs if t0 <= r[0] < t1]
st = json.load(open(w + "/stats.json"))["accounts"]
print(f"{M} members of one group, 2 accounts, simulator at Klaviyo's real limits, {S} s from the first request:")
print(f"  backlog: {orders:,} orders ({sum(want[a] for a in accts):,} events: " + ", ".join(f"{a} {want[a]:,}" for a in accts) +
      f") in {parts} partitions{'; acct-b all in partition 0 (--skew)' if skew else ''}")
n429 = sum(1 for r in win if r[3] == 429)
ok = True
for a in accts:
    ra = [r for r in win if r[2] == a]
    ev = sum(r[4] for r in ra if r[3] == 202)
    sent = st[a]["events_recorded"] + st[a]["duplicates_ignored"]
    queued = sent < want[a]  # the backlog outlasted the window
    times = [t0] + [r[0] for r in ra] + ([t1] if queued else [])
    gap = max(b - x for x, b in zip(times, times[1:])) / 1000 if len(times) > 1 else S
    share = 100 * ev / (S * CEIL)
    ok = ok and share >= 95 and gap < 10
    print(f"  {a}: {share:.1f} % of its ceiling ({ev:,} events in {len(ra)} requests, {ev / max(1, len(ra)):.0f} per request; goal >= 95 %); "
          f"longest interval without a request {gap:.1f} s (goal < 10 s; backlog {'left at the end' if queued else 'DRAINED: measured to its last request'})")
print(f"  429s: {n429} of {len(win)} requests = {100 * n429 / max(1, len(win)):.2f} % (goal < 0.5 %); whole run incl. shutdown: "
      f"{sum(1 for r in reqs if r[3] == 429)} of {len(reqs)}")
ok = ok and 100 * n429 / max(1, len(win)) < 0.5
print()
print("| member | requests | 429s | events accepted | share of the 2 accounts' ceilings | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|")
for m in range(1, M + 1):
    rm = [r for r in win if r[5] == m]
    ev = sum(r[4] for r in rm if r[3] == 202)
    rss = [int(l.split()[1]) for l in open(f"{w}/rss{m}.txt") if l.strip()]
    hwm = open(f"{w}/hwm{m}.txt").read().strip()
    print(f"| {m} | {len(rm)} | {sum(1 for r in rm if r[3] == 429)} | {ev:,} | {100 * ev / (S * CEIL * len(accts)):.1f} % | "
          f"{max(rss) / 1024:.1f} (VmHWM {int(hwm or 0) / 1024:.1f}) |")
print()
print(f"Request timeline (t = 0: first request; rows of {every} s; cells: requests/events accepted (429s), all members):")
tl = timeline.per_second([r[:5] for r in win], t0, accts)
timeline.print_timeline(tl, accts, 0, S - 1, every)
sys.exit(0 if ok else 1)
PY
