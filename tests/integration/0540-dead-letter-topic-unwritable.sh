#!/usr/bin/env bash
# If the dead-letter topic cannot be written, the consumer says so and does
# not advance past the records it could not dead-letter: once the topic
# exists, the next run dead-letters exactly those records. Nothing dropped.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.customers.$sfx" 3 compact
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.orders.$sfx" 3
suppressions_topic
start_sim
# pos.deadletter.$sfx does not exist yet (auto-creation is off on the broker)
write_config "$work/config.json" '{"kafka": {"message.timeout.ms": "2000"}}'
produce_samples
"$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/run1.log" 2>&1 & pid=$!; pids+=($pid)
for _ in $(seq 1 400); do grep -q 'cannot write the dead-letter topic' "$work/run1.log" && break; sleep 0.05; done
grep -q '"level":"error".*cannot write the dead-letter topic' "$work/run1.log" || { tail -5 "$work/run1.log" >&2; exit 1; }
kill -0 "$pid" # still running: it did not give up on the records, nor skip them
kill -TERM "$pid"; wait "$pid" || true
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.deadletter.$sfx" 1
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/run2.log" 2>&1
"$bin/tillstream-dlq" stats --config "$work/config.json" --json >"$work/stats.json"
python3 - "$work/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["by_reason"] == {"UNMAPPED_OUTLET": 1, "NO_PROFILE_IDENTIFIER": 2}, s["by_reason"]
print("dead-letter topic unwritable: not advanced; the 3 records were dead-lettered once it existed")
PY
