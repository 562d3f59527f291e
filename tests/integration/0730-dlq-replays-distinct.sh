#!/usr/bin/env bash
# tillstream-dlq counts source records, not dead-letter copies (issue 17), on
# the real broker: a live run and three replays of one window (each under a
# group of its own) dead-letter the same 6 orders four times. `stats` counts
# 6 distinct (24 records, 18 copies); `redrive` re-sends each source record
# once and marks the copies done; a fourth replay's copies are recognised as
# redriven before and not re-sent.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json" '{"routing": {"default_online_outlet": null}}'
python3 - >"$work/o.kv" <<'PY'
import json
for i in range(10):
    outlet = ["999", "999", "999", "999", None, None, "101", "201", "301", "102"][i]
    o = {"order_id": f"D{i}", "customer_id": f"DC{i}", "status": "completed",
         "occurred_at": "2026-10-01T10:00:00Z", "currency": "AUD", "total": "10",
         "lines": [{"line_id": "1", "quantity": 1, "row_total": "10"}],
         "customer": {"email": f"dc{i}@example.com", "home_outlet_id": outlet}}
    print(f"D{i}\t{json.dumps(o)}")
PY
from=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.01
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o.kv"
timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/live.log"
to=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
replay() { timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --replay-from "$from" --replay-to "$to" --group "replay-$1-$sfx" >"$work/r$1.log"; }
for n in 1 2 3; do replay $n; done

stats() { "$bin/tillstream-dlq" stats --config "$work/config.json" --json; }
stats >"$work/s.json"
python3 - "$work/s.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["total"] == 24 and s["distinct"] == 6 and s["copies"] == 18, s
assert s["by_reason"] == {"UNMAPPED_OUTLET": 4, "NO_HOME_OUTLET": 2}, s
assert s["records_by_reason"] == {"UNMAPPED_OUTLET": 16, "NO_HOME_OUTLET": 8}, s
assert s["copies_by_reason"] == {"UNMAPPED_OUTLET": 12, "NO_HOME_OUTLET": 6}, s
assert sum(s["by_outlet"].values()) == 6 and sum(s["by_source_topic"].values()) == 6, s
PY
"$bin/tillstream-dlq" stats --config "$work/config.json" | grep -c '24 record(s), 6 distinct (source record + reason), 18 copies' >/dev/null

rd() { "$bin/tillstream-dlq" redrive --config "$work/config.json" --state-topic "tillstream.redrive.$sfx" "$@"; }
rd --dry-run >"$work/dry.txt"
grep -q '^dry run: 6 record(s) would be redriven, 0 at the redrive limit (3), 0 superseded, 18 copies' "$work/dry.txt" ||
  { cat "$work/dry.txt" >&2; exit 1; }
rd >"$work/rd1.txt"
grep -q '^6 record(s) redriven, 0 at the redrive limit (3), 0 superseded, 18 copies' "$work/rd1.txt" || { cat "$work/rd1.txt" >&2; exit 1; }
[ "$(grep '^redrive  to' "$work/rd1.txt" | grep -o 'key D[0-9]' | sort -u | wc -l)" = 6 ]
sent=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "pos.orders.$sfx" -e -q -f '%h\n' | grep -c 'tillstream.redrive.count=1' || true)
[ "$sent" = 6 ] || { echo "orders topic got $sent redriven records, want 6" >&2; exit 1; }
rd >"$work/rd2.txt"
grep -q '^0 record(s) redriven, 0 at the redrive limit (3), 0 superseded, 0 copies' "$work/rd2.txt" || { cat "$work/rd2.txt" >&2; exit 1; }
# a fourth replay of the window: its dead letters are copies of records redriven before
replay 4
rd >"$work/rd3.txt"
grep -q '^0 record(s) redriven, 0 at the redrive limit (3), 0 superseded, 6 copies' "$work/rd3.txt" || { cat "$work/rd3.txt" >&2; exit 1; }
grep -q 'redriven before' "$work/rd3.txt"
stats | python3 -c "
import json, sys; s = json.load(sys.stdin)
assert s['total'] == 30 and s['distinct'] == 6 and s['copies'] == 24, s"
echo "dlq: live run + 3 replays = 24 dead letters, 6 distinct, 18 copies; redrive sent 6 once; a 4th replay's copies not re-sent"
