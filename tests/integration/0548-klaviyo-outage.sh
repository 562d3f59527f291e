#!/usr/bin/env bash
# A Klaviyo outage, on the real broker: tillstream-orders is live and caught
# up when Klaviyo starts answering 500/503 to everything, then closes every
# connection without an answer (the simulator's POST /__sim/faults; its
# records and de-duplication keys stay). Orders keep arriving meanwhile.
# While Klaviyo is down the consumer must:
# - dead-letter nothing (a 5xx or a lost connection is retryable);
# - back off (capped exponential backoff: tens of retries, not thousands);
# - say so: one warning per account once its oldest event has waited
#   klaviyo.stall_warn_ms, tillstream_consumer_stalled 1 after
#   consumer.stall_timeout_ms, the oldest-event age rising.
# Once Klaviyo answers again it must deliver every event exactly once (as
# Klaviyo counts them: by unique_id), say it recovered, clear the gauges,
# and commit everything: a fresh --exit-at-end run finds nothing to consume.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim --seed 5
write_config "$work/config.json" '{"klaviyo": {"stall_warn_ms": 2000},
  "consumer": {"stall_timeout_ms": 4000}, "admin": {"listen": "127.0.0.1:0"}}'
orders_kv "$work/before.kv" K 0 1000 60   # 2,000 events (a Placed Order and a line each)
orders_kv "$work/during.kv" K 1000 1000 60
recorded() { sim_counts all events_recorded; }
faults() { curl -fsS -X POST "$sim/__sim/faults" --data "$1" >/dev/null; }
log_has() { grep -c "$1" "$work/orders.log" || true; }
wait_log="$work/orders.log"

kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/before.kv"
start_live tillstream-orders "$work/orders.log"
m() { metric "$port" "$1"; }
wait_for 60 "the first 2,000 events" '[ "$(recorded)" -ge 2000 ]'
# caught up: no account waiting (a slow start may have warned and recovered)
wait_for 30 "no account waiting" '[ "$(m tillstream_oldest_undelivered_age_seconds)" = 0 ] &&
  [ "$(log_has "account has waited")" = "$(log_has "account is delivering again")" ]'
w0=$(log_has 'account has waited') r0=$(log_has 'account is delivering again')
p0=$(log_has '"message":"progressing again"')

# the outage: first 500/503 to every request, then no answer at all
faults '{"fail_rate": 1}'
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/during.kv"
wait_for 30 "a retried server error" '[ "$(log_has "request failed (server error); retrying in")" -gt 0 ]'
faults '{"fail_rate": 0, "drop_rate": 1}'
wait_for 30 "a retried lost connection" '[ "$(log_has "request failed (Server returned nothing")" -gt 0 ]'
wait_for 30 "the stall warnings of all 3 accounts" '[ "$(log_has "account has waited")" -ge $((w0 + 3)) ]'
wait_for 30 "tillstream_consumer_stalled 1" '[ "$(m tillstream_consumer_stalled)" = 1 ]'
during=$(recorded)
[ "$during" = 2000 ] || { echo "Klaviyo recorded $during events while down (2000 before)" >&2; exit 1; }
age=$(m tillstream_oldest_undelivered_age_seconds)
python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 2)' "$age" ||
  { echo "oldest undelivered age $age s during the outage" >&2; exit 1; }
retries=$(m tillstream_klaviyo_retries_total)
dead=$(m tillstream_dead_letter_total)
[ "$dead" = 0 ] || { echo "$dead dead letters during the outage (a 5xx and a lost connection are retryable)" >&2; exit 1; }
[ "$retries" -gt 0 ] && [ "$retries" -lt 200 ] ||
  { echo "$retries retries during the outage: want some, with backoff (not a retry loop)" >&2; exit 1; }
[ "$(log_has 'account has waited')" = $((w0 + 3)) ] || { echo "more than one stall warning per account:" >&2; grep 'account has waited' "$work/orders.log" >&2; exit 1; }
kill -0 "$c" || { echo "the consumer exited during the outage" >&2; exit 1; }

# Klaviyo is back
faults '{"fail_rate": 0, "drop_rate": 0}'
wait_for 120 "all 4,000 events after the outage" '[ "$(recorded)" -ge 4000 ]'
wait_for 30 "'account is delivering again' for all 3 accounts" '[ "$(log_has "account is delivering again")" -ge $((r0 + 3)) ]'
wait_for 30 "'progressing again'" '[ "$(log_has "\"message\":\"progressing again\"")" -gt "$p0" ]'
wait_for 30 "tillstream_consumer_stalled 0" '[ "$(m tillstream_consumer_stalled)" = 0 ]'
wait_for 60 "nothing in flight and no lag" \
  '[ "$(m tillstream_inflight_records)" = 0 ] && [ "$(m tillstream_consumer_lag_records)" = 0 ]'
read -r got dups <<<"$(sim_counts all events_recorded duplicates_ignored)"
[ "$got" = 4000 ] || { echo "Klaviyo recorded $got of 4000 events" >&2; exit 1; }
dead=$(m tillstream_dead_letter_total)
[ "$dead" = 0 ] && [ -z "$(read_dlq)" ] || { echo "dead letters after the outage: $dead" >&2; exit 1; }
kill -TERM "$c"; wait "$c"
timeout 60 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/check.log" 2>&1
grep -q '"message":"summary","consumed":0,' "$work/check.log" || { echo "records left uncommitted:" >&2; tail -n 2 "$work/check.log" >&2; exit 1; }
echo "Klaviyo outage (500/503, then no answer): 0 dead letters, $retries retries with backoff, a stall warning per account and the stalled gauge; afterwards all 4000 events recorded once ($dups re-sends de-duplicated by Klaviyo), everything committed"
