#!/usr/bin/env bash
# ctest: cost 70 (seconds, about: long tests start first)
# At-least-once for consent: a change decided but not yet accepted by
# Klaviyo when the consumer is SIGKILLed is sent after the restart. The
# simulator admits one subscribe request per minute: A's subscribe goes,
# B's waits for the window while B's profile is delivered; SIGKILL; the restarted
# consumer re-reads B (its offset was not stored), the durable state does
# not claim B's subscribe (it is written only once Klaviyo accepted it),
# so B is subscribed after the restart: exactly the two changes arrive.
set -euo pipefail
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim --limit subscribe_bulk=1/s,1/m
sim="http://127.0.0.1:$sim_port"
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\"}}"
stat() { curl -fsS "$sim/__sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['accounts']['brand-a']['$1'])"; }
produce() {
  printf '%s\t{"customer_id":"%s","email":"%s@example.com","home_outlet_id":"101","email_consent":true,"updated_at":1790000000000}\n' \
    "$1" "$1" "$(echo "$1" | tr A-Z a-z)" | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
}
"$bin/tillstream-customers" --config "$work/c.json" >"$work/c1.log" 2>&1 & c=$!; pids+=($c)
trap 'cp "$work/c1.log" "${TMPDIR:-/tmp}/0590-c1.log" 2>/dev/null; cleanup' EXIT
produce A
for _ in $(seq 1 900); do [ "$(stat subscribed)" = 1 ] && break; sleep 0.1; done
[ "$(stat subscribed)" = 1 ] || { echo "FAIL: A not subscribed" >&2; tail -5 "$work/c1.log" >&2; exit 1; }
produce B
# B's profile arrives; its subscribe waits for the window (the engine paces
# on RateLimit-Remaining: 0, or gets a 429)
for _ in $(seq 1 300); do curl -fsS "$sim/__sim/accounts/brand-a/profiles" | grep -q '"external_id":"B"' && break; sleep 0.1; done
curl -fsS "$sim/__sim/accounts/brand-a/profiles" | grep -q '"external_id":"B"' || { echo "FAIL: B's profile not delivered" >&2; exit 1; }
sleep 1
kill -KILL "$c"; wait "$c" 2>/dev/null || true
[ "$(stat subscribed)" = 1 ] || { echo "FAIL: B subscribed before the crash" >&2; exit 1; }
timeout 240 "$bin/tillstream-customers" --config "$work/c.json" --exit-at-end >"$work/c2.log" 2>&1
[ "$(stat subscribed)" = 2 ] || { echo "FAIL: after the restart $(stat subscribed) subscribed, want 2" >&2; exit 1; }
echo "consent: the change the crash interrupted was sent after the restart"
