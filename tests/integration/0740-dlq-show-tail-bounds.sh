#!/usr/bin/env bash
# tillstream-dlq show/tail bounds (issue 17), on the real broker:
# - --limit N prints N records; --since/--until select by dead-letter time;
# - tail starts at the end: it prints only dead letters written after it
#   started; tail --from-beginning prints the old ones first;
# - every stderr line of a command is JSON or its one-line note (no raw
#   librdkafka lines).
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json" '{"routing": {"default_online_outlet": null}}'
customers() { # a run of tillstream-customers to the end; its log when it fails
  timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/customers.log" 2>&1 ||
    { echo "tillstream-customers exited $?:" >&2; tail -n 8 "$work/customers.log" >&2; exit 1; }
}
cust() { printf '%s\t{"customer_id":"%s","email":"x%s@example.com","home_outlet_id":null}\n' "$1" "$1" "$1"; }
for i in 1 2 3; do cust "E$i"; done | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
customers
sleep 1.1   # dead-letter timestamps are milliseconds: a clear gap between the batches
mid=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.1
for i in 4 5; do cust "E$i"; done | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
customers
dlq() { "$bin/tillstream-dlq" "$1" --config "$work/config.json" "${@:2}"; }
keys() { python3 -c 'import json,sys; print(" ".join(json.loads(l)["key"] for l in sys.stdin if l.strip()))'; }
skeys() { keys | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//'; }  # the topic's order is the processing order

[ "$(dlq show --json | skeys)" = "E1 E2 E3 E4 E5" ]
all=$(dlq show --json | keys)
[ "$(dlq show --json --limit 2 | keys)" = "$(echo "$all" | cut -d' ' -f1-2)" ]
[ "$(dlq show --json --since "$mid" | skeys)" = "E4 E5" ]
[ "$(dlq show --json --until "$mid" | skeys)" = "E1 E2 E3" ]
[ "$(dlq show --json --until "$mid" --limit 1 | keys)" = "$(echo "$all" | cut -d' ' -f1)" ]
dlq show --limit 1 >/dev/null 2>"$work/show.err"
[ "$(cat "$work/show.err")" = "1 record(s)" ]

# tail from the end: only E6, written after it started following
dlq tail --json >"$work/tail.out" 2>"$work/tail.err" & tp=$!
pids+=($tp)
for _ in $(seq 1 200); do grep -q '^following ' "$work/tail.err" && break; sleep 0.05; done
grep -q "^following pos.deadletter.$sfx from the end" "$work/tail.err"
dlq tail --json --from-beginning --limit 6 >"$work/tailall.out" 2>/dev/null & ta=$!
pids+=($ta)
cust E6 | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
customers
for _ in $(seq 1 200); do [ -s "$work/tail.out" ] && break; sleep 0.05; done
# --limit ends a tail: the from-beginning one stops after E1..E6
timeout 30 tail --pid="$ta" -f /dev/null
[ "$(skeys <"$work/tailall.out")" = "E1 E2 E3 E4 E5 E6" ]
kill "$tp"; wait "$tp" 2>/dev/null || true
[ "$(keys <"$work/tail.out")" = "E6" ] || { echo "tail printed: $(keys <"$work/tail.out")" >&2; exit 1; }
! grep -q '^%' "$work/tail.err" "$work/show.err"
echo "dlq: --limit, --since/--until exact; tail from the end shows only the new dead letter, --from-beginning all"
