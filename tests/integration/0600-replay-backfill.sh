#!/usr/bin/env bash
# Backfill by replay, on the real broker (offsets-for-times):
# - a replay from a timestamp delivers exactly the window's events, all with
#   backfill: true, under its own group: the live group's offsets stay put;
# - replaying the same window again (another group) adds nothing new;
# - a replay killed midway (SIGKILL) and restarted with the same group
#   completes with nothing lost.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim --latency-ms 5
write_config "$work/config.json" '{"klaviyo": {"max_queued_events": 300, "linger_ms": 20},
  "kafka": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}}'
gen() { # gen FROM COUNT FILE: orders with embedded customers
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
start, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(start, start + n):
        o = {"order_id": f"W{i}", "customer_id": f"R{i % 40}", "status": "completed",
             "occurred_at": "2026-10-01T10:00:00Z", "currency": "AUD", "total": "10",
             "lines": [{"line_id": "1", "quantity": 1, "row_total": "10"}],
             "customer": {"email": f"r{i % 40}@example.com", "home_outlet_id": ["101", "201", "301"][i % 3]}}
        f.write(f"W{i}\t{json.dumps(o)}\n")
PY
}
gen 0 400 "$work/a.kv"; gen 400 600 "$work/b.kv"
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/a.kv"
sleep 1.5   # record timestamps are milliseconds: leave a clear gap around the window start
from=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 1.5
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/b.kv"
timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/live.log"
stats() { curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" | python3 -c "import json,sys; a=json.load(sys.stdin)['accounts']; print(sum(x['$1'] for x in a.values()))"; }
[ "$(stats events_recorded)" = 2000 ] && [ "$(stats backfill_events)" = 0 ]
curl -fsS -X POST "http://127.0.0.1:$sim_port/__sim/reset" >/dev/null

# replay of the window [from, now): batch B only, flagged backfill
timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --replay-from "$from" --group "replay-1-$sfx" >"$work/r1.log"
[ "$(stats events_recorded)" = 1200 ] || { echo "replay recorded $(stats events_recorded), want 1200" >&2; exit 1; }
[ "$(stats backfill_events)" = 1200 ]
for a in brand-a brand-b brand-c; do curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/$a/events"; done >"$work/r1.events"
python3 - "$work/r1.events" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ids = {int(e["unique_id"].split(":")[0][1:]) for e in ev}
assert ids == set(range(400, 1000)), (min(ids), max(ids), len(ids))
assert all(e["backfill"] for e in ev)
PY
grep -q '"message":"replay complete"' "$work/r1.log"
grep -q '"records_done":600,"records_total":600,"progress":1.0000' "$work/r1.log"
# every line of a run is JSON (the summary line had one '}' too many)
json_lines() { python3 -c 'import json,sys
for n, l in enumerate(open(sys.argv[1]), 1):
    try: json.loads(l)
    except ValueError: sys.exit(f"{sys.argv[1]}:{n}: not JSON: {l[:120]}")' "$1"; }
json_lines "$work/r1.log"
# --replay-to before --replay-from is a usage error
set +e; "$bin/tillstream-orders" --config "$work/config.json" --replay-from 2026-11-02T00:00:00Z \
    --replay-to 2026-11-01T00:00:00Z >"$work/inverted.log" 2>&1; rc=$?; set -e
[ "$rc" = 2 ] || { echo "--replay-to before --replay-from: exit $rc, want 2" >&2; exit 1; }
# the live group's offsets are untouched: it has nothing new to read
timeout 60 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/live2.log"
grep -q '"message":"summary","consumed":0,' "$work/live2.log"

# the same window again: nothing new at Klaviyo
timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --replay-from "$from" --group "replay-2-$sfx" >"$work/r2.log"
[ "$(stats events_recorded)" = 1200 ] && [ "$(stats duplicates_ignored)" = 1200 ]

# a replay of everything, killed midway and resumed with the same group
# (a slower simulator of its own, so the kill lands mid-run)
"$bin/tillstream-klaviyo-sim" --port-file "$work/sim2.port" --latency-ms 60 --account brand-a=KLAVIYO_KEY_BRAND_A \
    --account brand-b=KLAVIYO_KEY_BRAND_B --account brand-c=KLAVIYO_KEY_BRAND_C >/dev/null 2>&1 &
pids+=($!)
wait_file "$work/sim2.port"
sim_port=$(cat "$work/sim2.port")
write_config "$work/config2.json" '{"klaviyo": {"max_queued_events": 100, "linger_ms": 20},
  "kafka": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}}'
"$bin/tillstream-orders" --config "$work/config2.json" --replay-from earliest --group "replay-3-$sfx" >"$work/r3a.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ "$(stats events_recorded)" -ge 600 ] && break; sleep 0.05; done
sleep 1.5 # stored offsets reach the broker every second (auto.commit.interval.ms)
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
before=$(stats events_recorded)
[ "$before" -lt 2000 ] || { echo "the replay finished before it could be killed" >&2; exit 1; }
# the window of "earliest" is the real log (was off by 1,001 per partition)
grep -q '"records_total":1000,' "$work/r3a.log" || { grep -m1 records_total "$work/r3a.log" >&2; exit 1; }
timeout 180 "$bin/tillstream-orders" --config "$work/config2.json" --replay-from earliest --group "replay-3-$sfx" >"$work/r3b.log"
json_lines "$work/r3b.log"
tail -n 3 "$work/r3b.log" | grep '"message":"replay complete"' | grep -q '"progress":1.0000' ||
  { echo "the last progress line is not 100 %" >&2; tail -n 3 "$work/r3b.log" >&2; exit 1; }
[ "$(stats events_recorded)" = 2000 ] || { echo "resumed replay recorded $(stats events_recorded), want 2000" >&2; exit 1; }
consumed=$(grep -o '"message":"summary","consumed":[0-9]*' "$work/r3b.log" | grep -o '[0-9]*$')
[ "$consumed" -lt 1000 ] || { echo "the resumed replay started over ($consumed records)" >&2; exit 1; }
echo "replay: window exact with backfill, live offsets untouched, second replay no-op, killed at $before of 2000 events and resumed ($consumed of 1000 records re-read), nothing lost"
