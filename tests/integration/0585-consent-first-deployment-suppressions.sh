#!/usr/bin/env bash
# First deployment over an existing Klaviyo account (docs/consent.md, "First
# deployment"), on the real broker and the simulator:
# - the suppressions topic already holds Klaviyo's suppressions (as
#   tillstream-suppressions writes them: one keyed by the POS customer id,
#   one known by its email only, one a spam report); the POS says
#   email_consent true for those customers (updated after the suppression,
#   no explicit opt-in) and for three others; the consumer starts with an
#   empty state topic: the three others are subscribed, the suppressed ones
#   are not (the simulator removes no suppression), and /readyz is not 200
#   before the state and the suppressions were read to their ends;
# - with customers.wait_for_suppressions (the default) a missing
#   suppressions topic stops the consumer at start, exit 2, naming the key;
#   with it false the consumer warns and runs;
# - issue 15: before tillstream-suppressions' first full pass over every
#   account is in its state topic (pass_at), the consumer waits: it logs
#   so once per account, its gauge says 1, /readyz is 503 and Klaviyo gets
#   no subscribe although the records are in the topic; SIGTERM during the
#   wait exits 0 at once; after `tillstream-suppressions --once` over the
#   simulator it starts: the customers Klaviyo suppressed are not
#   subscribed, the others are.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\"},
  \"admin\":{\"listen\":\"127.0.0.1:0\"}}"
stat() { sim_counts brand-a "$1"; }
expect() { # expect WHAT GOT WANT
  [ "$2" = "$3" ] || { echo "FAIL: $1: $2, want $3" >&2; tail -n 20 "$work/cust.log" >&2; exit 1; }
}
now=$(python3 -c 'import time; print(int(time.time()*1000))')
supp=$(( now - 3600000 ))  # an hour ago

# Klaviyo already suppressed S1 (unsubscribe link), S2 (spam report) and S3
# (unsubscribe, a profile Klaviyo knows by email only), and the poller wrote them
for e in "s1 UNSUBSCRIBE" "s2 SPAM_REPORT" "s3 UNSUBSCRIBE"; do
  set -- $e
  curl -fsS -X POST "$sim/__sim/accounts/brand-a/suppress" -d "{\"email\":\"$1@example.com\",\"reason\":\"$2\",\"timestamp\":$supp}" >/dev/null
done
{
  printf 'S1\t{"account":"brand-a","channel":"email","reason":"UNSUBSCRIBE","timestamp":%s,"email":"s1@example.com","phone_number":null,"external_id":"S1","profile_id":"p1"}\n' "$supp"
  printf 'S2\t{"account":"brand-a","channel":"email","reason":"SPAM_COMPLAINT","timestamp":%s,"email":"s2@example.com","phone_number":null,"external_id":"S2","profile_id":"p2"}\n' "$supp"
  printf 's3@example.com\t{"account":"brand-a","channel":"email","reason":"UNSUBSCRIBE","timestamp":%s,"email":"S3@Example.com","phone_number":null,"external_id":null,"profile_id":"p3"}\n' "$supp"
} | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.klaviyo.suppressions.$sfx" -K $'\t'
# the POS: consent true for everyone, updated after the suppressions
for id in S1 S2 S3 O1 O2 O3; do
  printf '%s\t{"customer_id":"%s","email":"%s@example.com","home_outlet_id":"101","email_consent":true,"updated_at":%s}\n' \
    "$id" "$id" "$(echo "$id" | tr A-Z a-z)" "$now"
done | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'

# 1. the first start: an empty state topic (created now), the suppressions read first
"$bin/tillstream-customers" --config "$work/c.json" >"$work/cust.log" 2>&1 &
cpid=$!; pids+=($cpid)
for _ in $(seq 1 200); do grep -q '"port":' "$work/cust.log" && break; sleep 0.05; done
aport=$(grep -o '"port":[0-9]*' "$work/cust.log" | head -1 | cut -d: -f2)
# /readyz turns 200 only once the restore (state and suppressions to their ends) is done
ready=""
for _ in $(seq 1 1500); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$aport/readyz" 2>/dev/null; then
    ready=$(grep -c 'consent state restored' "$work/cust.log" || true); break
  fi
  sleep 0.02
done
[ -n "$ready" ] || { echo "FAIL: never ready" >&2; tail -n 20 "$work/cust.log" >&2; exit 1; }
[ "$ready" -ge 1 ] || { echo "FAIL: /readyz was 200 before the restore finished" >&2; exit 1; }
grep 'consent state restored' "$work/cust.log" | head -1 | grep -q '"suppressions":3' ||
  { echo "FAIL: the restore did not read the 3 suppressions: $(grep 'consent state restored' "$work/cust.log")" >&2; exit 1; }
for _ in $(seq 1 300); do [ "$(stat subscribed)" -ge 3 ] && [ "$(stat profiles)" -ge 6 ] && break; sleep 0.1; done
for _ in $(seq 1 100); do [ "$(metric "$aport" tillstream_subscriptions_blocked_total)" = 3 ] && break; sleep 0.1; done
expect "subscribes" "$(stat subscribed)" 3                      # O1, O2, O3
expect "suppressions removed" "$(stat suppressions_removed)" 0  # S1, S2, S3 not re-subscribed
expect "blocked" "$(metric "$aport" tillstream_subscriptions_blocked_total)" 3
expect "suppressions read" "$(metric "$aport" tillstream_consent_suppressions_read_total)" 3
subs=$(curl -fsS "$sim/__sim/accounts/brand-a/subscriptions" | python3 -c "
import json,sys
print(' '.join(sorted(p['email'].split('@')[0] + '=' + p['email_consent'] for p in map(json.loads, sys.stdin))))")
expect "consents in Klaviyo" "$subs" "o1=SUBSCRIBED o2=SUBSCRIBED o3=SUBSCRIBED s1=UNSUBSCRIBED s2=UNSUBSCRIBED s3=UNSUBSCRIBED"
kill -TERM "$cpid"; wait "$cpid"

# 2. no suppressions topic: exit 2 with the key path (the default) ...
write_config "$work/missing.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\",
  \"suppressions\":\"pos.klaviyo.suppressions.missing.$sfx\"}}"
rc=0; timeout 60 "$bin/tillstream-customers" --config "$work/missing.json" --exit-at-end >"$work/missing.log" 2>&1 || rc=$?
expect "exit code without the topic" "$rc" 2
grep -q 'topics.suppressions: pos.klaviyo.suppressions.missing.'"$sfx"' does not exist' "$work/missing.log" ||
  { echo "FAIL: no clear message: $(cat "$work/missing.log")" >&2; exit 1; }
grep -q 'customers.wait_for_suppressions' "$work/missing.log" || { echo "FAIL: the message names no way out" >&2; exit 1; }
# ... and a warning with customers.wait_for_suppressions false
write_config "$work/nowait.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\",
  \"suppressions\":\"pos.klaviyo.suppressions.missing.$sfx\"},\"customers\":{\"wait_for_suppressions\":false}}"
timeout 120 "$bin/tillstream-customers" --config "$work/nowait.json" --exit-at-end >"$work/nowait.log" 2>&1
grep '"level":"warn"' "$work/nowait.log" | grep -q 'no suppressions topic pos.klaviyo.suppressions.missing' ||
  { echo "FAIL: no warning: $(head -5 "$work/nowait.log")" >&2; exit 1; }

# 3. issue 15: the poller's first pass not done yet (its state topic does not even exist)
cust3="pos.customers.first.$sfx" supp3="pos.klaviyo.suppressions.first.$sfx" st3="tillstream.suppressions.state.first.$sfx"
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "$cust3" 3 compact
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "$supp3" 1
write_config "$work/first.json" "{\"topics\":{\"customers\":\"$cust3\",\"customers_state\":\"tillstream.customers.state.first.$sfx\",
  \"suppressions\":\"$supp3\",\"suppressions_state\":\"$st3\"},\"consumer\":{\"group_id_customers\":\"it-first-$sfx\"},
  \"suppressions\":{\"transactional_id\":\"it-supp-first-$sfx\"},\"admin\":{\"listen\":\"127.0.0.1:0\"}}"
statb() { sim_counts brand-b "$1"; }
# Klaviyo (brand-b) suppressed B1..B3; the POS says consent true for B1..B6
for i in 1 2 3; do
  curl -fsS -X POST "$sim/__sim/accounts/brand-b/suppress" -d "{\"email\":\"b$i@example.com\",\"external_id\":\"B$i\",
    \"channel\":\"email\",\"reason\":\"UNSUBSCRIBE\",\"timestamp\":$supp}" >/dev/null
done
for i in 1 2 3 4 5 6; do
  printf 'B%s\t{"customer_id":"B%s","email":"b%s@example.com","home_outlet_id":"201","email_consent":true,"updated_at":%s}\n' \
    "$i" "$i" "$i" "$now"
done | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "$cust3" -K $'\t'
waiting_line() { grep -q "waiting for tillstream-suppressions' first full pass over account $2" "$1"; }
wait_waiting() { # wait_waiting LOG: the wait is logged for every account
  for _ in $(seq 1 300); do
    waiting_line "$1" brand-a && waiting_line "$1" brand-b && waiting_line "$1" brand-c && return 0; sleep 0.1
  done
  echo "FAIL: no waiting line per account" >&2; cat "$1" >&2; exit 1
}
# 3a. SIGTERM during the wait: a clean exit, promptly
"$bin/tillstream-customers" --config "$work/first.json" >"$work/first0.log" 2>&1 &
fpid=$!; pids+=($fpid)
wait_waiting "$work/first0.log"
kill -TERM "$fpid"
rc=0; for _ in $(seq 1 100); do kill -0 "$fpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$fpid" 2>/dev/null && { echo "FAIL: SIGTERM during the wait: still running after 10 s" >&2; exit 1; }
wait "$fpid" || rc=$?
expect "exit code of a SIGTERM during the wait" "$rc" 0
grep -q 'consuming .* as group' "$work/first0.log" && { echo "FAIL: joined the group while waiting" >&2; exit 1; }
[ "$(grep -c "first full pass over account brand-b" "$work/first0.log")" = 1 ] ||
  { echo "FAIL: the wait is not logged once per account" >&2; cat "$work/first0.log" >&2; exit 1; }
# 3b. waiting: not ready, gauge 1, no subscribe while the records are in the topic
"$bin/tillstream-customers" --config "$work/first.json" >"$work/first.log" 2>&1 &
fpid=$!; pids+=($fpid)
wait_waiting "$work/first.log"
fport=$(grep -o '"port":[0-9]*' "$work/first.log" | head -1 | cut -d: -f2)
expect "waiting gauge" "$(metric "$fport" tillstream_consent_waiting_for_suppressions)" 1
for _ in $(seq 1 30); do # 3 s of waiting: nothing reaches Klaviyo, never ready
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$fport/readyz")
  expect "/readyz while waiting" "$code" 503
  expect "brand-b subscribes while waiting" "$(statb subscribed)" 0
  expect "customers consumed while waiting" "$(metric "$fport" tillstream_records_consumed_total)" 0
  sleep 0.1
done
# the poller's first full pass (over the simulator): then the consumer starts
"$bin/tillstream-suppressions" --config "$work/first.json" --once >"$work/supp3.log" 2>&1 ||
  { echo "FAIL: tillstream-suppressions --once" >&2; cat "$work/supp3.log" >&2; exit 1; }
code=""; for _ in $(seq 1 300); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$fport/readyz"); [ "$code" = 200 ] && break; sleep 0.1
done
expect "/readyz after the first pass" "$code" 200
for _ in $(seq 1 300); do [ "$(statb subscribed)" -ge 3 ] && [ "$(statb profiles)" -ge 6 ] && break; sleep 0.1; done
for _ in $(seq 1 100); do [ "$(metric "$fport" tillstream_subscriptions_blocked_total)" = 3 ] && break; sleep 0.1; done
expect "brand-b subscribes" "$(statb subscribed)" 3
expect "brand-b suppressions removed" "$(statb suppressions_removed)" 0
expect "waiting gauge after the pass" "$(metric "$fport" tillstream_consent_waiting_for_suppressions)" 0
# the restore read everything the pass wrote (brand-b's 3, and brand-a's from part 1)
n3=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "$supp3" -e -q -f '%k\n' 2>/dev/null | grep -c . || true)
[ "$n3" -ge 3 ] || { echo "FAIL: the poller wrote $n3 suppressions" >&2; exit 1; }
grep 'consent state restored' "$work/first.log" | head -1 | grep -q "\"suppressions\":$n3" ||
  { echo "FAIL: the restore did not read the poller's $n3 suppressions: $(grep 'consent state restored' "$work/first.log")" >&2; exit 1; }
subs=$(curl -fsS "$sim/__sim/accounts/brand-b/subscriptions" | python3 -c "
import json,sys
print(' '.join(sorted(p['email'].split('@')[0] + '=' + p['email_consent'] for p in map(json.loads, sys.stdin))))")
expect "brand-b consents in Klaviyo" "$subs" "b1=UNSUBSCRIBED b2=UNSUBSCRIBED b3=UNSUBSCRIBED b4=SUBSCRIBED b5=SUBSCRIBED b6=SUBSCRIBED"
kill -TERM "$fpid"; wait "$fpid"
# 3c. an ordinary restart (the pass is in the compacted topic): no wait
timeout 120 "$bin/tillstream-customers" --config "$work/first.json" --exit-at-end >"$work/first2.log" 2>&1
grep -q "waiting for tillstream-suppressions" "$work/first2.log" && { echo "FAIL: a restart waited" >&2; exit 1; }
expect "brand-b subscribes after the restart" "$(statb subscribed)" 3

echo "first deployment: 3 Klaviyo suppressions read before any subscription (not re-subscribed, 3 others subscribed), readiness after the restore; a missing suppressions topic exits 2 (or warns with wait_for_suppressions false); before the poller's first pass: waiting (logged per account, gauge 1, not ready, 0 subscribes, SIGTERM exits 0), after it 3 suppressed not subscribed and 3 subscribed; no wait on a restart"
