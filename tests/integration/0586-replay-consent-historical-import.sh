#!/usr/bin/env bash
# --replay-consent on the real broker and the simulator (docs/consent.md,
# "Replays"): a first import of a customers topic no live consumer has read.
# - a replay without --replay-consent sends profiles only: no subscribe, no
#   unsubscribe;
# - a replay with --replay-consent sends each POS consent as a transition,
#   subscribes as historical imports: historical_import: true and each
#   profile's consented_at = the POS consent time (email_consent_at, else
#   updated_at; one in the future is sent in the past), with the same
#   suppression rule (H4, suppressed in Klaviyo and in the suppressions
#   topic, stays suppressed); every body passes the official schema
#   (tests/contract/validate.py) and the simulator's checks (consented_at
#   required, in the past, only with historical_import);
# - it writes the consent state it sent, so the live consumer that starts
#   afterwards from the beginning of the topic sends no consent again.
set -euo pipefail
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
topics
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.klaviyo.suppressions.$sfx" 1
mkdir -p "$work/dump"
start_sim --dump-bodies "$work/dump"
sim="http://127.0.0.1:$sim_port"
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\",
  \"suppressions\":\"pos.klaviyo.suppressions.$sfx\"}}"
stat() { curl -fsS "$sim/__sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['accounts']['brand-a']['$1'])"; }
expect() { # expect WHAT GOT WANT
  [ "$2" = "$3" ] || { echo "FAIL: $1: $2, want $3" >&2; for l in "$work"/*.log; do tail -n 20 "$l" >&2; done; exit 1; }
}
now=$(python3 -c 'import time; print(int(time.time()*1000))')
t1=1780272000000             # 2026-06-01T00:00:00Z: an opt-in at the till
t2=1782864000000             # 2026-07-01T00:00:00Z: an update (no explicit consent time)
future=$(( now + 86400000 )) # a POS clock a day ahead
{
  printf 'H1\t{"customer_id":"H1","email":"h1@example.com","home_outlet_id":"101","email_consent":true,"email_consent_at":%s,"updated_at":%s}\n' "$t1" "$t2"
  printf 'H2\t{"customer_id":"H2","email":"h2@example.com","home_outlet_id":"101","email_consent":true,"updated_at":%s}\n' "$t2"
  printf 'H3\t{"customer_id":"H3","email":"h3@example.com","home_outlet_id":"101","email_consent":false,"updated_at":%s}\n' "$t2"
  printf 'H4\t{"customer_id":"H4","email":"h4@example.com","home_outlet_id":"101","email_consent":true,"email_consent_at":%s}\n' "$t1"
  printf 'H5\t{"customer_id":"H5","email":"h5@example.com","home_outlet_id":"101","email_consent":true,"email_consent_at":%s}\n' "$future"
  printf 'H6\t{"customer_id":"H6","email":"h6@example.com","home_outlet_id":"101","updated_at":%s}\n' "$t2"
} | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
# H4 unsubscribed in Klaviyo after its opt-in, and the poller recorded it
curl -fsS -X POST "$sim/__sim/accounts/brand-a/suppress" -d '{"email":"h4@example.com","reason":"UNSUBSCRIBE"}' >/dev/null
printf 'H4\t{"account":"brand-a","channel":"email","reason":"UNSUBSCRIBE","timestamp":%s,"email":"h4@example.com","phone_number":null,"external_id":"H4","profile_id":"p4"}\n' "$(( t2 + 1000 ))" |
  kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.klaviyo.suppressions.$sfx" -K $'\t'

# 1. a replay without --replay-consent: profiles only
timeout 120 "$bin/tillstream-customers" --config "$work/c.json" --replay-from earliest >"$work/replay.log" 2>&1
expect "replayed records" "$(grep -o '"consumed":[0-9]*' "$work/replay.log" | tail -1)" '"consumed":6'
expect "profiles after the plain replay" "$(stat profiles)" 6
expect "subscribes after the plain replay" "$(stat subscribed)" 0
expect "unsubscribes after the plain replay" "$(stat unsubscribed)" 0

# 2. the same window with --replay-consent (a group of its own)
timeout 120 "$bin/tillstream-customers" --config "$work/c.json" --replay-from earliest --replay-consent \
  --group "it-rc-$sfx" >"$work/replay-consent.log" 2>&1
expect "replayed records (consent)" "$(grep -o '"consumed":[0-9]*' "$work/replay-consent.log" | tail -1)" '"consumed":6'
expect "subscribes" "$(stat subscribed)" 3              # H1, H2, H5
expect "historical subscribes" "$(stat historical_subscribed)" 3
expect "unsubscribes" "$(stat unsubscribed)" 1          # H3
expect "refused" "$(curl -fsS "$sim/__sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['accounts']['brand-a']['requests'].get('400', 0))")" 0
expect "suppressions removed" "$(stat suppressions_removed)" 0  # H4 blocked
h4=$(curl -fsS "$sim/__sim/accounts/brand-a/subscriptions" | python3 -c "
import json,sys
for l in sys.stdin:
    p = json.loads(l)
    if p['email'] == 'h4@example.com': print(p['email_suppression'], p['email_consent'])")
expect "H4" "$h4" "UNSUBSCRIBE UNSUBSCRIBED"
# what was sent: every subscribe job historical, consented_at per profile
python3 - "$work/dump" "$t1" "$t2" "$now" <<'PY'
import datetime, glob, json, sys, time
d, t1, t2, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sent = {}
for f in sorted(glob.glob(d + "/bulk_subscribe_profiles-*.json")):
    a = json.load(open(f))["data"]["attributes"]
    assert a.get("historical_import") is True, (f, a)
    for p in a["profiles"]["data"]:
        m = p["attributes"]["subscriptions"]["email"]["marketing"]
        sent[p["attributes"]["email"]] = datetime.datetime.fromisoformat(m["consented_at"]).timestamp() * 1000
assert sorted(sent) == ["h1@example.com", "h2@example.com", "h5@example.com"], sent
assert sent["h1@example.com"] == t1, sent          # email_consent_at
assert sent["h2@example.com"] == t2, sent          # updated_at
# a POS time in the future is sent in the past: when it was decided, less 1 s
assert now - 2000 <= sent["h5@example.com"] <= time.time() * 1000 - 1000, sent
print("historical subscribes:", {k: int(v) for k, v in sent.items()})
PY
"$py" "$src/tests/contract/validate.py" --auto "$work"/dump/bulk_subscribe_profiles-*.json "$work"/dump/bulk_unsubscribe_profiles-*.json
# the state topic holds what the replay sent
states=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "tillstream.customers.state.$sfx" -e -q -f '%k\n' | sort -u | tr '\n' ' ')
expect "state topic keys" "$states" "H1 H2 H3 H4 H5 "

# 3. the live consumer from the beginning of the topic: nothing sent again
timeout 120 "$bin/tillstream-customers" --config "$work/c.json" --exit-at-end >"$work/live.log" 2>&1
expect "live records" "$(grep -o '"consumed":[0-9]*' "$work/live.log" | tail -1)" '"consumed":6'
expect "subscribes after the live run" "$(stat subscribed)" 3
expect "unsubscribes after the live run" "$(stat unsubscribed)" 1
expect "suppressions removed after the live run" "$(stat suppressions_removed)" 0
echo "replay-consent: plain replay sent profiles only; --replay-consent sent 3 historical subscribes (consented_at from the POS), 1 unsubscribe, kept H4 suppressed; the live run after it sent nothing again"
