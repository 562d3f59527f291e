#!/usr/bin/env bash
# ctest: cost 70 (seconds, about: long tests start first)
# Consent over time on the real broker and the simulator (docs/consent.md):
# - C1 subscribed, then unsubscribed in Klaviyo by an unsubscribe link; C2
#   the same with a spam report: both stay suppressed through 10 POS
#   updates with consent true (newer updated_at than the suppression), a
#   consumer SIGKILL and restart (the state topic restores what was sent)
#   and a full --replay-from earliest (replays send profiles only);
# - C1's and C3's suppressions are also in the suppressions topic (as
#   tillstream-suppressions would put them), C2's is known to Klaviyo only;
#   C3 was suppressed before tillstream ever saw it: its first POS record
#   with consent true is blocked (the day-one case);
# - a POS opt-in newer than the suppression (email_consent_at) re-subscribes
#   C1 exactly once (the simulator counts the suppression it removed), and
#   repeating that record sends nothing more.
set -euo pipefail
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.klaviyo.suppressions.$sfx" 1 compact
start_sim
sim="http://127.0.0.1:$sim_port"
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\",
  \"suppressions\":\"pos.klaviyo.suppressions.$sfx\"},\"admin\":{\"listen\":\"127.0.0.1:0\"}}"
now() { python3 -c 'import time; print(int(time.time()*1000))'; }
produce() { # produce ID CONSENT UPDATED_AT_MS [EMAIL_CONSENT_AT_MS]
  local extra=""; [ -n "${4:-}" ] && extra=",\"email_consent_at\":$4"
  printf '%s\t{"customer_id":"%s","email":"%s@example.com","home_outlet_id":"101","email_consent":%s,"updated_at":%s%s}\n' \
    "$1" "$1" "$(echo "$1" | tr A-Z a-z)" "$2" "$3" "$extra" |
    kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
}
stat() { curl -fsS "$sim/__sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['accounts']['brand-a']['$1'])"; }
profiles_of() { curl -fsS "$sim/__sim/accounts/brand-a/profiles" | grep -c "\"external_id\":\"$1\"" || true; }
wait_profiles() { # wait_profiles ID N: the simulator received N profile imports of ID
  for _ in $(seq 1 600); do [ "$(profiles_of "$1")" -ge "$2" ] && return 0; sleep 0.1; done
  echo "timeout: $(profiles_of "$1") profiles of $1, want $2" >&2; tail -5 "$work/cust.log" >&2; return 1
}
suppression_of() {
  curl -fsS "$sim/__sim/accounts/brand-a/subscriptions" | python3 -c "
import json,sys
for l in sys.stdin:
    p = json.loads(l)
    if p['email'] == sys.argv[1]: print(p['email_suppression'], p['email_consent'])" "$1"
}
wait_idle() { # every record produced so far is consumed and completed (delivered)
  local lag inf
  for _ in $(seq 1 600); do
    lag=$(metric "$aport" tillstream_consumer_lag_records); inf=$(metric "$aport" tillstream_inflight_records)
    if [ "$lag" = 0 ] && [ "$inf" = 0 ] && [ "$(metric "$aport" tillstream_records_consumed_total)" -gt 0 ]; then
      sleep 1.2  # the gauges are refreshed every second: confirm on a fresh sample
      lag=$(metric "$aport" tillstream_consumer_lag_records); inf=$(metric "$aport" tillstream_inflight_records)
      [ "$lag" = 0 ] && [ "$inf" = 0 ] && return 0
    fi
    sleep 0.1
  done
  echo "timeout waiting for the consumer to be idle (lag $lag, in flight $inf)" >&2
  cp "$work/cust.log" "${TMPDIR:-/tmp}/0555-cust.log"; tail -5 "$work/cust.log" >&2; return 1
}
start_consumer() {
  "$bin/tillstream-customers" --config "$work/c.json" >"$work/cust.log" 2>&1 &
  cpid=$!; pids+=($cpid)
  for _ in $(seq 1 200); do grep -q '"port":' "$work/cust.log" && break; sleep 0.05; done
  aport=$(grep -o '"port":[0-9]*' "$work/cust.log" | head -1 | cut -d: -f2)
}
expect() { # expect WHAT GOT WANT
  [ "$2" = "$3" ] || { echo "FAIL: $1: $2, want $3" >&2; tail -20 "$work/cust.log" >&2; exit 1; }
}

# 1. C1 and C2 opt in at the till: subscribed once each
t=$(now)
produce C1 true "$t"; produce C2 true "$t"
start_consumer
wait_profiles C1 1; wait_profiles C2 1
for _ in $(seq 1 100); do [ "$(stat subscribed)" = 2 ] && break; sleep 0.1; done
expect "first subscribes" "$(stat subscribed)" 2

# 2. Klaviyo suppresses them: C1 by an unsubscribe link, C2 by a spam report;
#    C3 was suppressed before tillstream knew it, and the poller put it in
#    the suppressions topic (as tillstream-suppressions would)
curl -fsS -X POST "$sim/__sim/accounts/brand-a/suppress" -d '{"email":"c1@example.com","reason":"UNSUBSCRIBE"}' >/dev/null
curl -fsS -X POST "$sim/__sim/accounts/brand-a/suppress" -d '{"email":"c2@example.com","reason":"SPAM_REPORT"}' >/dev/null
curl -fsS -X POST "$sim/__sim/accounts/brand-a/suppress" -d '{"email":"c3@example.com","reason":"UNSUBSCRIBE"}' >/dev/null
ts=$(now)
for c in C1 C3; do  # C2's spam report is known to the simulator only
  printf '%s\t{"account":"brand-a","channel":"email","reason":"UNSUBSCRIBE","timestamp":%s,"email":"%s@example.com","phone_number":null,"external_id":"%s","profile_id":"x"}\n' \
    "$c" "$ts" "$(echo "$c" | tr A-Z a-z)" "$c"
done | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.klaviyo.suppressions.$sfx" -K $'\t'
sleep 0.01  # distinct millisecond: the POS updates below are newer than the suppressions

# 3. ten POS updates with consent true, all newer than the suppressions
for i in $(seq 1 10); do t=$(( $(now) + i )); produce C1 true "$t"; produce C2 true "$t"; done
produce C3 true "$(( $(now) + 20 ))"
wait_idle; wait_profiles C1 2; wait_profiles C2 2; wait_profiles C3 1
expect "subscribes after 10 updates" "$(stat subscribed)" 2
expect "suppressions removed" "$(stat suppressions_removed)" 0
expect "C1" "$(suppression_of c1@example.com)" "UNSUBSCRIBE UNSUBSCRIBED"
expect "C2" "$(suppression_of c2@example.com)" "SPAM_COMPLAINT UNSUBSCRIBED"
expect "C3" "$(suppression_of c3@example.com)" "UNSUBSCRIBE UNSUBSCRIBED"
blocked=$(metric "$aport" tillstream_subscriptions_blocked_total)
[ "$blocked" -ge 1 ] || { echo "FAIL: C3's block not counted ($blocked)" >&2; exit 1; }

# 4. SIGKILL, more updates, restart: the state topic brings back what was sent
kill -KILL "$cpid"; wait "$cpid" 2>/dev/null || true
states=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "tillstream.customers.state.$sfx" -e -q -f '%k\n' | sort -u | tr '\n' ' ')
expect "state topic keys" "$states" "C1 C2 C3 "
t=$(( $(now) + 30 )); produce C1 true "$t"; produce C2 true "$t"; produce C3 true "$t"
start_consumer
wait_profiles C3 2; wait_idle
expect "subscribes after the restart" "$(stat subscribed)" 2
expect "suppressions removed after the restart" "$(stat suppressions_removed)" 0
kill -TERM "$cpid"; wait "$cpid"

# 5. a full replay of the customers topic: profiles only
timeout 120 "$bin/tillstream-customers" --config "$work/c.json" --replay-from earliest >"$work/replay.log" 2>&1
# the engine keeps the latest profile per batch: at least one more import of each
expect "replayed records" "$(grep -o '"consumed":[0-9]*' "$work/replay.log" | tail -1)" '"consumed":26'
expect "subscribes after the replay" "$(stat subscribed)" 2
expect "C1 after the replay" "$(suppression_of c1@example.com)" "UNSUBSCRIBE UNSUBSCRIBED"

# 6. C1 opts in again at the till, after the unsubscribe: re-subscribed exactly once
start_consumer
optin=$(( $(now) + 40 ))
produce C1 true "$optin" "$optin"
for _ in $(seq 1 300); do [ "$(stat subscribed)" = 3 ] && break; sleep 0.1; done
produce C1 true "$(( optin + 1 ))" "$optin"
produce C1 true "$(( optin + 2 ))"
wait_idle
expect "subscribes after the opt-in" "$(stat subscribed)" 3
expect "suppressions removed by the opt-in" "$(stat suppressions_removed)" 1
expect "C1 after the opt-in" "$(suppression_of c1@example.com)" "None SUBSCRIBED"
expect "C2 still" "$(suppression_of c2@example.com)" "SPAM_COMPLAINT UNSUBSCRIBED"
for _ in $(seq 1 50); do [ "$(metric "$aport" tillstream_subscriptions_reoptin_total)" = 1 ] && break; sleep 0.1; done
expect "re-opt-ins counted" "$(metric "$aport" tillstream_subscriptions_reoptin_total)" 1
grep -q 're-opt-in: customer C1' "$work/cust.log" || { echo "FAIL: the re-opt-in is not logged" >&2; exit 1; }
kill -TERM "$cpid"; wait "$cpid"
echo "consent: suppressed customers stayed suppressed through 10 updates, SIGKILL, restart and replay; one re-opt-in"
