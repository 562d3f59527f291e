#!/usr/bin/env bash
# ctest: cost 50 (seconds, about: long tests start first)
# A Kafka SASL password rotated without a restart, on a real broker of this
# test's own with a SCRAM-SHA-256 listener (scripts/kafka.sh, TS_KAFKA_SCRAM).
# tillstream-orders reads its password from a file ("${file:...}", a mounted
# Secret) and is live. The password is changed in Kafka and in the file
# (the kubelet's rename); existing connections stay authenticated, so the
# rotation shows only when the consumer reconnects: the broker is then
# killed and restarted. Every client of the process (group consumer,
# customer-table reader, dead-letter producer) must reconnect with the new
# password, so orders produced after the restart are delivered, without a
# restart of the consumer; the old password is refused by then, and no
# password appears in the log.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
kdir="$work/kafka"
trap '"$src/scripts/kafka.sh" stop "$kdir" >/dev/null 2>&1 || true; cleanup' EXIT
TS_KAFKA_SCRAM=tillstream:it-pw-one "$src/scripts/kafka.sh" start "$kdir" 2>/dev/null
TS_KAFKA_DIR=$kdir TS_KAFKA_BOOTSTRAP=$(cat "$kdir/bootstrap")   # PLAINTEXT: topics, kcat
sasl=$(cat "$kdir/bootstrap_sasl")
topics
start_sim
secret() { printf '%s\n' "$1" >"$work/kafka-password.new"; mv "$work/kafka-password.new" "$work/kafka-password"; }
secret it-pw-one
write_config "$work/config.json" '{"admin": {"listen": "127.0.0.1:0"}}'
python3 - "$work/config.json" "$sasl" "$work/kafka-password" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["kafka"] = {"bootstrap.servers": sys.argv[2], "security.protocol": "SASL_PLAINTEXT",
              "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "tillstream",
              "sasl.password": "${file:%s}" % sys.argv[3]}
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
orders_kv "$work/o1.kv" S 0 600 30      # 1,200 events
orders_kv "$work/o2.kv" S 600 600 30
log_has() { grep -c "$1" "$work/orders.log" || true; }
wait_log="$work/orders.log"
old_pw_refused() {
  ! kcat -b "$sasl" -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-256 \
      -X sasl.username=tillstream -X sasl.password=it-pw-one -L -m 3 >/dev/null 2>&1
}

kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o1.kv"
start_live tillstream-orders "$work/orders.log"
wait_for 60 "the first 1,200 events" '[ "$(sim_counts all events_recorded)" -ge 1200 ]'

# the rotation: Kafka first, then the Secret; connections stay up meanwhile
"$src/scripts/kafka.sh" scram-password "$kdir" tillstream it-pw-two
secret it-pw-two
wait_for 30 "the new credentials taken" '[ "$(log_has "SASL credentials changed in their files")" = 1 ]'
clients=$(grep -o '"clients":[0-9]*' "$work/orders.log" | tail -n 1 | cut -d: -f2)
[ "$clients" -ge 3 ] || { echo "only $clients clients took the new credentials (consumer, table, dead letters)" >&2; exit 1; }
old_pw_refused || { echo "the old password still works: no rotation to test" >&2; exit 1; }

# every connection drops: the broker dies and comes back
"$src/scripts/kafka.sh" kill "$kdir"
"$src/scripts/kafka.sh" restart "$kdir" 2>/dev/null
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o2.kv"
wait_for 120 "all 2,400 events after the restart" '[ "$(sim_counts all events_recorded)" -ge 2400 ]'
kill -0 "$c" || { echo "the consumer exited" >&2; exit 1; }
wait_for 60 "nothing in flight and no lag" \
  '[ "$(metric "$port" tillstream_inflight_records)" = 0 ] && [ "$(metric "$port" tillstream_consumer_lag_records)" = 0 ]'
[ "$(metric "$port" tillstream_dead_letter_total)" = 0 ] || { echo "dead letters" >&2; exit 1; }
if grep -q 'it-pw-' "$work/orders.log"; then echo "a Kafka password in the log" >&2; exit 1; fi
kill -TERM "$c"; wait "$c"
echo "Kafka SASL password rotated without a restart: $clients clients took it from the file, the broker restart reconnected them with it (the old one refused), 2400 of 2400 events delivered"
