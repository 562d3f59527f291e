#!/usr/bin/env bash
# tillstream-suppressions on the real broker and the simulator (issue 15,
# docs/consent.md "The suppressions poller"):
# - 14 email suppressions (unsubscribe links, spam reports, a bounce; 10 of
#   them at the same millisecond, across a page boundary: page_size 10) and
#   2 SMS unsubscribes; `--once` produces each exactly once;
# - 6 more email suppressions (2 at the watermark's own millisecond, which
#   "greater-than" would miss) and 2 more SMS unsubscribes (one in the
#   watermark's second); a looping poller produces them, is SIGKILLed, and a
#   restart (`--once`) resumes from the watermark in the state topic: no
#   record twice, none missing, nothing new on a third run;
# - the watermark is in the compacted state topic (key = account);
# - the topic's values, as a dry run's --suppressions file, block the same
#   customers there (one record format);
# - tillstream-customers, started after the poller, reads the suppressions
#   topic and blocks every stale POS subscribe of those customers (consent
#   true, no newer opt-in): the simulator counts subscribes only for the
#   3 customers Klaviyo never suppressed, and no suppression was removed.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
supp="pos.klaviyo.suppressions.$sfx" state="tillstream.suppressions.state.$sfx"
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\",
  \"suppressions\":\"$supp\",\"suppressions_state\":\"$state\"},
  \"suppressions\":{\"interval_ms\":1000,\"page_size\":10,\"transactional_id\":\"it-supp-$sfx\"},
  \"admin\":{\"listen\":\"127.0.0.1:0\"}}"
t0=$(python3 -c 'import time; print(int(time.time()*1000) - 3600000)')
sms_w=$(( (t0 + 40000) / 1000 * 1000 )) # Get Events' datetime has second precision
suppress() { # suppress ID CHANNEL REASON TIMESTAMP_MS
  local id=$1 lo; lo=$(echo "$1" | tr A-Z a-z)
  local who="\"email\":\"$lo@example.com\""
  [ "$2" = sms ] && who="\"phone_number\":\"+6141234560${id#S}\""
  curl -fsS -X POST "$sim/__sim/accounts/brand-a/suppress" \
    -d "{$who,\"external_id\":\"$id\",\"channel\":\"$2\",\"reason\":\"$3\",\"timestamp\":$4}" >/dev/null
}
topic_lines() { kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "$1" -e -q -f '%k\t%s\n' 2>/dev/null || true; }
count() { topic_lines "$supp" | grep -c . || true; }
expect() { [ "$2" = "$3" ] || { echo "FAIL: $1: $2, want $3" >&2; exit 1; }; }
check_once() { # every suppression exactly once: one record per (key, channel, timestamp)
  topic_lines "$supp" | python3 -c '
import json, sys
want = int(sys.argv[1]); seen = {}
for line in sys.stdin:
    k, v = line.rstrip("\n").split("\t", 1); r = json.loads(v)
    assert k == r["external_id"], (k, r)
    assert r["account"] == "brand-a" and r["channel"] in ("email", "sms") and r["profile_id"], r
    seen.setdefault((k, r["channel"], r["timestamp"]), 0); seen[(k, r["channel"], r["timestamp"])] += 1
dup = {k: n for k, n in seen.items() if n > 1}
assert not dup, f"produced twice: {dup}"
assert len(seen) == want, f"{len(seen)} distinct suppressions, want {want}: {sorted(seen)}"
' "$1"
}
reasons=(UNSUBSCRIBE SPAM_REPORT UNSUBSCRIBE SPAM_REPORT HARD_BOUNCE)

# 0. a bad interval is a config error naming its key path (exit 2), as
#    --check-config says too; the good config checks clean
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["suppressions"]["interval_ms"]=5; json.dump(c,open(sys.argv[2],"w"))' \
  "$work/c.json" "$work/bad.json"
for mode in --once --check-config; do
  rc=0; "$bin/tillstream-suppressions" --config "$work/bad.json" $mode >/dev/null 2>"$work/bad.err" || rc=$?
  expect "exit code of a bad suppressions.interval_ms ($mode)" "$rc" 2
  grep -q 'suppressions.interval_ms: must be between 1000 and 86400000' "$work/bad.err"
done
"$bin/tillstream-suppressions" --config "$work/c.json" --check-config >/dev/null

# 1. 14 email suppressions (E5..E14 at one millisecond) and 2 SMS unsubscribes
for i in 1 2 3 4; do suppress "E$i" email "${reasons[$((i % 5))]}" $((t0 + i * 1000)); done
for i in $(seq 5 14); do suppress "E$i" email "${reasons[$((i % 5))]}" $((t0 + 5000)); done
suppress S1 sms UNSUBSCRIBE $((t0 + 20000)); suppress S2 sms UNSUBSCRIBE $((t0 + 21000))
"$bin/tillstream-suppressions" --config "$work/c.json" --once >"$work/run1.log" 2>&1 ||
  { echo "FAIL: first --once run" >&2; tail -20 "$work/run1.log" >&2; exit 1; }
expect "records after run 1" "$(count)" 16
check_once 16
grep -q '"channel":"email","pages":2,"produced":14' "$work/run1.log" ||
  { echo "FAIL: expected 14 email suppressions over 2 pages" >&2; grep polled "$work/run1.log" >&2; exit 1; }
topic_lines "$supp" | grep -q '"reason":"SPAM_COMPLAINT"' && topic_lines "$supp" | grep -q '"reason":"HARD_BOUNCE"'

# 2. more suppressions, two at the watermark's own millisecond, one SMS in
#    the watermark's second; a looping poller, SIGKILLed once they are out
suppress E15 email UNSUBSCRIBE $((t0 + 5000)); suppress E16 email SPAM_REPORT $((t0 + 5000))
for i in 17 18 19 20; do suppress "E$i" email UNSUBSCRIBE $((t0 + 9000 + i * 1000)); done
suppress S3 sms UNSUBSCRIBE $((t0 + 21400)); suppress S4 sms UNSUBSCRIBE $((t0 + 40000))
"$bin/tillstream-suppressions" --config "$work/c.json" >"$work/loop.log" 2>&1 &
lpid=$!; pids+=($lpid)
for _ in $(seq 1 300); do [ "$(count)" -ge 24 ] && break; sleep 0.1; done
expect "records while looping" "$(count)" 24
for _ in $(seq 1 100); do grep -q '"channel":"sms","pages"' "$work/loop.log" && break; sleep 0.1; done
# its metrics: what this process produced, and the account's last good poll
lport=$(grep -o '"port":[0-9]*' "$work/loop.log" | head -1 | cut -d: -f2)
for _ in $(seq 1 100); do
  [ "$(metric "$lport" tillstream_suppressions_last_success_timestamp_seconds)" != 0 ] && break; sleep 0.1
done
expect "produced by the looping poller" "$(metric "$lport" tillstream_suppressions_produced_total)" 8
curl -fsS "127.0.0.1:$lport/metrics" | grep -q '^tillstream_suppressions_produced_total{account="brand-a",channel="sms"} 2$'
curl -fsS "127.0.0.1:$lport/metrics" | grep -q '^tillstream_suppressions_last_success_timestamp_seconds{account="brand-a"} [1-9]'
curl -fsS "127.0.0.1:$lport/readyz" >/dev/null
if command -v promtool >/dev/null; then
  curl -fsS "127.0.0.1:$lport/metrics" | promtool check metrics ||
    { echo "FAIL: promtool check metrics on the poller's /metrics" >&2; exit 1; }
fi
kill -KILL "$lpid"; wait "$lpid" 2>/dev/null || true
"$bin/tillstream-suppressions" --config "$work/c.json" --once >"$work/run3.log" 2>&1 ||
  { echo "FAIL: --once after SIGKILL" >&2; tail -20 "$work/run3.log" >&2; exit 1; }
check_once 24
# the restart resumed from the stored watermark (E20's time): nothing re-read as new
grep -q "\"account\":\"brand-a\",\"email_at\":$((t0 + 29000)),\"sms_at\":$sms_w" "$work/run3.log" ||
  { echo "FAIL: the restart did not restore the watermark" >&2; grep watermark "$work/run3.log" >&2; exit 1; }
grep -q '"account":"brand-a","channel":"email","pages":1,"produced":0' "$work/run3.log"
# 3. the state topic holds it, keyed by account, with the end of the last
#    full pass (pass_at)
topic_lines "$state" | python3 -c '
import json, sys
last = {}
for line in sys.stdin:
    k, v = line.rstrip("\n").split("\t", 1); last[k] = json.loads(v)
st = last["brand-a"]
# the first full pass of every account is marked, also where Klaviyo had nothing
assert all(last[a]["pass_at"] > 0 for a in ("brand-a", "brand-b", "brand-c")), last
assert last["brand-b"]["email"] == {"at": 0, "ids": []}, last["brand-b"]
assert st["email"]["at"] == int(sys.argv[1]) and len(st["email"]["ids"]) == 1, st
assert st["sms"]["at"] == int(sys.argv[2]) and len(st["sms"]["ids"]) == 1, st
' $((t0 + 29000)) "$sms_w"
"$bin/tillstream-suppressions" --config "$work/c.json" --once >"$work/run4.log" 2>&1
check_once 24

# 3b. the topic's values are a dry run's --suppressions file (one format)
kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "$supp" -e -q -f '%s\n' >"$work/supp.jsonl"
printf '%s\n' '{"customer_id":"E16","email":"e16@example.com","home_outlet_id":"101","email_consent":true}' \
  '{"customer_id":"S3","phone":"+61412345603","home_outlet_id":"101","sms_consent":true}' \
  '{"customer_id":"N1","email":"n1@example.com","home_outlet_id":"101","email_consent":true}' >"$work/dry.jsonl"
"$bin/tillstream-customers" --config "$work/c.json" --dry-run --input "$work/dry.jsonl" \
  --suppressions "$work/supp.jsonl" >"$work/dry.out"
python3 - "$work/dry.out" <<'PY'
import json, sys
out = [json.loads(l) for l in open(sys.argv[1])]
assert out[0].get("consent_blocked") == {"channel": "email", "reason": "SPAM_COMPLAINT"}, out[0]
blocked_sms = out[1].get("consent_blocked_sms") or out[1].get("consent_blocked")
assert blocked_sms and blocked_sms["reason"] == "UNSUBSCRIBE", out[1]
assert "consent_blocked" not in out[2] and out[2]["profiles"][0]["subscriptions"] == {"email": "SUBSCRIBED"}, out[2]
PY

# 4. the customers consumer over POS updates with consent true: every
#    suppressed customer is blocked, the 3 never suppressed subscribe
now=$(python3 -c 'import time; print(int(time.time()*1000))')
{
  for i in $(seq 1 20); do
    printf 'E%s\t{"customer_id":"E%s","email":"e%s@example.com","home_outlet_id":"101","email_consent":true,"updated_at":%s}\n' "$i" "$i" "$i" "$now"
  done
  for i in 1 2 3 4; do
    printf 'S%s\t{"customer_id":"S%s","phone":"+6141234560%s","home_outlet_id":"101","sms_consent":true,"updated_at":%s}\n' "$i" "$i" "$i" "$now"
  done
  for i in 1 2 3; do
    printf 'N%s\t{"customer_id":"N%s","email":"n%s@example.com","home_outlet_id":"101","email_consent":true,"updated_at":%s}\n' "$i" "$i" "$i" "$now"
  done
} | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
"$bin/tillstream-customers" --config "$work/c.json" --exit-at-end >"$work/cust.log" 2>&1 ||
  { echo "FAIL: customers consumer" >&2; tail -20 "$work/cust.log" >&2; exit 1; }
grep -q '"states"' "$work/cust.log"
read -r sub rem <<<"$(sim_counts brand-a subscribed suppressions_removed)"
expect "subscribes sent (only N1..N3)" "$sub" 3
expect "suppressions removed by a subscribe" "$rem" 0
echo "0580: 24 suppressions exactly once across runs and a SIGKILL, watermark restored, stale subscribes blocked"
