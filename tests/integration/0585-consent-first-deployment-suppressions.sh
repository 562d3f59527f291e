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
#   with it false the consumer warns and runs.
set -euo pipefail
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
sim="http://127.0.0.1:$sim_port"
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\"},
  \"admin\":{\"listen\":\"127.0.0.1:0\"}}"
stat() { curl -fsS "$sim/__sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['accounts']['brand-a']['$1'])"; }
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
echo "first deployment: 3 Klaviyo suppressions read before any subscription (not re-subscribed, 3 others subscribed), readiness after the restore; a missing suppressions topic exits 2 (or warns with wait_for_suppressions false)"
