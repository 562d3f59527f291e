#!/usr/bin/env bash
# ctest: cost 40 (seconds, about: long tests start first)
# Crash safety: tillstream-orders is killed with SIGKILL at several points of
# a run (after the simulator has recorded 600, 1200, 1800 and 2400 events) and
# restarted. At the end every source record is accounted for - its events
# are at the simulator or it is in the dead-letter topic - none is lost,
# and re-sent events carried the same unique_id (the simulator counts them
# as duplicates instead of recording them twice).
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim --latency-ms 20
# a killed member's partitions move after session.timeout.ms: keep it short here
write_config "$work/config.json" '{"klaviyo": {"max_queued_events": 400, "linger_ms": 20},
  "kafka": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}}'
python3 - "$work" <<'PY'
import json, random, sys
random.seed(42)
w = sys.argv[1]
outlets = ["101", "102", "201", "202", "301", "999", None]
with open(w + "/customers.kv", "w") as f, open(w + "/customers.jsonl", "w") as j:
    for i in range(400):
        c = {"customer_id": f"K{i}", "email": f"k{i}@example.com" if i % 17 else None,
             "phone": None, "first_name": "K", "last_name": str(i), "home_outlet_id": outlets[i % 7]}
        f.write(f"K{i}\t{json.dumps(c)}\n"); j.write(json.dumps(c) + "\n")
with open(w + "/orders.kv", "w") as f, open(w + "/orders.jsonl", "w") as j:
    for n in range(2000):
        lines = [{"line_id": str(k), "sku": f"S{k}", "name": "Item", "quantity": 1, "row_total": "9.95",
                  "unit_price": "9.95"} for k in range(1 + n % 3)]
        o = {"order_id": f"X{n}", "customer_id": f"K{random.randrange(420)}", "outlet_id": "101",
             "status": "completed", "occurred_at": "2026-11-01T10:00:00Z", "currency": "AUD",
             "total": "%.2f" % (9.95 * len(lines)), "lines": lines}
        f.write(f"X{n}\t{json.dumps(o)}\n"); j.write(json.dumps(o) + "\n")
PY
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/customers.kv"
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/orders.kv"
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >/dev/null

recorded() { curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" | python3 -c 'import json,sys; print(sum(a["events_recorded"] for a in json.load(sys.stdin)["accounts"].values()))'; }
kills=0
for target in 600 1200 1800 2400; do
  "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >>"$work/orders.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    [ "$(recorded)" -ge "$target" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
done
[ "$kills" -ge 3 ] || { echo "only $kills kills landed mid-run" >&2; exit 1; }
timeout 300 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >>"$work/orders.log" 2>&1

"$bin/tillstream-orders" --config "$work/config.json" --dry-run --input "$work/orders.jsonl" \
    --customers "$work/customers.jsonl" >"$work/o.dry"
for a in brand-a brand-b brand-c; do curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/$a/events" >"$work/$a.events"; done
curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" >"$work/stats.json"
read_dlq >"$work/dlq.json"
python3 - "$work" "$kills" <<'PY'
import json, sys, collections
w, kills = sys.argv[1], int(sys.argv[2])
load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
dry = load(w + "/o.dry")
inputs = [json.loads(l)["order_id"] for l in open(w + "/orders.jsonl")]
stats = json.load(open(w + "/stats.json"))["accounts"]
got = {a: collections.Counter(e["unique_id"] for e in load(f"{w}/{a}.events")) for a in stats}
dlq = load(w + "/dlq.json")
def reason(r): return dict(zip(r["headers"][0::2], r["headers"][1::2]))["tillstream.reason"]
dlq_keys = collections.defaultdict(set)
for r in dlq: dlq_keys[r["key"]].add(reason(r))
lost = []
for oid, r in zip(inputs, dry):
    if r["dead_letter"]:
        if r["dead_letter"]["reason"] not in dlq_keys.get(oid, set()): lost.append(oid)
    else:
        for e in r["events"]:
            if got[r["account"]][e["unique_id"]] != 1: lost.append((oid, e["unique_id"]))
assert not lost, lost[:10]
dups = sum(s["duplicates_ignored"] for s in stats.values())
want = sum(len(r["events"]) for r in dry if not r["dead_letter"])
assert sum(s["events_recorded"] for s in stats.values()) == want
print(f"crash: {kills} SIGKILLs, {want} events each recorded once, {dups} re-sent events de-duplicated by unique_id, "
      f"{len(dlq)} dead letters covering {len(dlq_keys)} records")
PY
