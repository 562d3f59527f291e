#!/usr/bin/env bash
# No record can block its partition (issue 13), on the real broker with the
# dead-letter topic at the broker's default size limit (~1 MB): a 2 MB
# order that does not decode is dead-lettered without its value (header
# tillstream.value.omitted: size=N beside the source coordinates, logged
# once at error level); the record after it is delivered and
# --exit-at-end finishes: the partition moved on.
# Redrive (tillstream-dlq) then fetches the original 2 MB value from the
# source coordinates and re-produces it byte for byte; once the source
# record is gone (deleted below the log start), the dead letter is
# reported "source record is gone" and nothing is produced.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
# the source topic takes 2 MB records; the dead-letter topic keeps the default
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.orders.$sfx" 1 max.message.bytes=3000000
topics
start_sim
write_config "$work/config.json" '{"klaviyo": {"linger_ms": 20}}'
python3 - "$work" <<'PY'
import json, sys
def order(n):
    return {"order_id": f"Z{n}", "customer_id": "Q1", "status": "completed",
            "occurred_at": "2026-11-01T10:00:00Z", "currency": "AUD", "total": "10",
            "lines": [{"line_id": "1", "quantity": 1, "row_total": "10"}],
            "customer": {"email": "q1@example.com", "home_outlet_id": "101"}}
with open(sys.argv[1] + "/orders.kv", "w") as f:
    f.write(f"Z1\t{json.dumps(order(1))}\n")
    f.write("Z2\t{\"order_id\": \"Z2\", \"junk\": \"" + "x" * (2 * 1024 * 1024) + "\n")  # 2 MB, not JSON
    f.write(f"Z3\t{json.dumps(order(3))}\n")
PY
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -X message.max.bytes=3000000 -l "$work/orders.kv"
set +e
timeout 60 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/orders.log" 2>&1; rc=$?
set -e
[ "$rc" = 0 ] || { echo "exit $rc: the partition did not move on" >&2; grep -v '"level":"info"' "$work/orders.log" | tail -n 5 >&2; exit 1; }
n=$(grep -c '"level":"error".*dead letter too large' "$work/orders.log" || true)
[ "$n" = 1 ] || { echo "$n error lines for the too-large dead letter, want 1" >&2; exit 1; }
read_dlq | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin if l.strip()]
assert len(recs) == 1, f"{len(recs)} dead letters, want 1"
r = recs[0]
h = {}
for i in range(0, len(r["headers"]), 2): h[r["headers"][i]] = r["headers"][i + 1]
assert h.get("tillstream.value.omitted", "").startswith("size="), h
size = int(h["tillstream.value.omitted"].split("=")[1])
assert size > 2 * 1024 * 1024, size
assert h["tillstream.reason"] == "DECODE_ERROR", h
assert h["tillstream.source.offset"] == "1" and h["tillstream.source.partition"] == "0", h
assert h.get("tillstream.run"), h
assert not r.get("payload"), "the value was written"
print(f"dead letter: value omitted (size={size}), source offset 1")
'
grep -q '"message":"summary","consumed":3,' "$work/orders.log" || { grep summary "$work/orders.log" >&2; exit 1; }

# redrive fetches the source record: the re-produced value is the original
src_value() { # src_value OFFSET -> md5 and length of that record's value
  kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "pos.orders.$sfx" -p 0 -o "$1" -c 1 -e -q -f '%s' \
    -X fetch.message.max.bytes=4000000 | python3 -c 'import hashlib,sys; b=sys.stdin.buffer.read(); print(hashlib.md5(b).hexdigest(), len(b))'
}
orig=$(src_value 1)
"$bin/tillstream-dlq" redrive --config "$work/config.json" --reason DECODE_ERROR --group "rd-$sfx" >"$work/rd.txt" 2>"$work/rd.err" ||
  { echo "redrive failed" >&2; cat "$work/rd.txt" "$work/rd.err" >&2; exit 1; }
grep -q '^1 record(s) redriven, 0 at the redrive limit' "$work/rd.txt" || { cat "$work/rd.txt" "$work/rd.err" >&2; exit 1; }
end=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -Q -t "pos.orders.$sfx:0:-1" | awk '{print $NF}')
[ "$end" = 4 ] || { echo "source topic ends at $end after the redrive, want 4" >&2; exit 1; }
again=$(src_value 3)
[ "$again" = "$orig" ] || { echo "redriven value $again, want the original $orig" >&2; exit 1; }
kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "pos.orders.$sfx" -p 0 -o 3 -c 1 -e -q -f '%k %h\n' -X fetch.message.max.bytes=4000000 |
  grep -q '^Z2 .*tillstream.redrive.count=1' || { echo "the redriven record lacks its key or redrive count" >&2; exit 1; }

# the source record gone (log start moved past it and its redriven copy):
# reported as unavailable, nothing produced, exit 0
"$src/scripts/kafka.sh" delete-records "$TS_KAFKA_DIR" "pos.orders.$sfx" 0 4
"$bin/tillstream-dlq" redrive --config "$work/config.json" --reason DECODE_ERROR --group "rg-$sfx" \
  --state-topic "tillstream.redrive.gone.$sfx" >"$work/rg.txt" 2>"$work/rg.err" ||
  { echo "redrive of a gone source failed" >&2; cat "$work/rg.txt" "$work/rg.err" >&2; exit 1; }
grep -q "^skip .*partition 0 offset 1 key Z2: value left out and the source record is gone" "$work/rg.txt" &&
  grep -q '^0 record(s) redriven.*, some not redrivable (see above)' "$work/rg.txt" ||
  { echo "a gone source record is not reported unavailable:" >&2; cat "$work/rg.txt" "$work/rg.err" >&2; exit 1; }
end=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -Q -t "pos.orders.$sfx:0:-1" | awk '{print $NF}')
[ "$end" = 4 ] || { echo "something was produced for an unavailable source: the topic ends at $end" >&2; exit 1; }
echo "2 MB record: dead-lettered without its value, logged once, the partition moved on; redrive re-produced the original (md5, bytes: $orig); with the source gone: unavailable"
