#!/usr/bin/env bash
# Issue 16's phone table through a running tillstream-customers, a real
# broker and the simulator (phone-only customers, SMS consent true): the
# profiles carry the E.164 numbers and PhoneExtension, Klaviyo receives SMS
# subscriptions for the 3 mobiles (AU mobile twice, the US number) and none
# for the 4 landline / 1300 / 1800 numbers, which are counted in
# tillstream_sms_consent_skipped_total{reason="not_mobile"} and warned
# once (rate-bounded, customer id, never the number); the 2 invalid numbers
# leave no identifier: NO_PROFILE_IDENTIFIER saying the phone was invalid.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json" '{"admin": {"listen": "127.0.0.1:0"}}'
python3 - "$work/c.kv" <<'PY'
import json, sys
table = ["+61 0412 345 678", "61412345678", "+44 (0)20 7946 0958", "+1 (415) 555-0100 ext 2",
         "+61 2 9876 5432 x12", "1300 123 456", "1800 123 456", "9876 5432", "+999 123 456 789"]
with open(sys.argv[1], "w") as f:
    for i, p in enumerate(table):
        r = {"customer_id": "P%d" % i, "phone": p, "home_outlet_id": "101", "sms_consent": True}
        f.write("P%d\t%s\n" % (i, json.dumps(r)))
PY
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/c.kv"
"$bin/tillstream-customers" --config "$work/config.json" >"$work/customers.log" 2>&1 & pid=$!; pids+=($pid)
for _ in $(seq 1 200); do grep -q '"port":' "$work/customers.log" && break; sleep 0.05; done
port=$(grep -o '"port":[0-9]*' "$work/customers.log" | head -n 1 | cut -d: -f2)
[ -n "$port" ] || { cat "$work/customers.log" >&2; exit 1; }
sim_stat() { curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['accounts']['brand-a']['$1'])"; }
for _ in $(seq 1 400); do
  # 6 profiles: P0 and P1 are the same number, one profile for the simulator
  [ "$(sim_stat profiles)" = 6 ] && [ "$(sim_stat subscribed)" = 3 ] &&
    [ "$(metric "$port" tillstream_dead_letter_total)" = 2 ] && break
  sleep 0.05
done
[ "$(metric "$port" 'tillstream_sms_consent_skipped_total{reason="not_mobile"}')" = 4 ] ||
  { curl -s "127.0.0.1:$port/metrics" | grep sms >&2; exit 1; }
[ "$(sim_stat subscribed)" = 3 ] || { echo "SMS subscriptions: $(sim_stat subscribed), want 3" >&2; exit 1; }
[ "$(metric "$port" tillstream_dead_letter_total)" = 2 ]
curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/brand-a/profiles" >"$work/profiles.jsonl"
read_dlq >"$work/dlq.jsonl"
kill -TERM "$pid"; wait "$pid"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
profiles = {p["external_id"]: p for p in map(json.loads, open(w + "/profiles.jsonl"))}
want = {"P0": ("+61412345678", None), "P1": ("+61412345678", None), "P2": ("+442079460958", None),
        "P3": ("+14155550100", "2"), "P4": ("+61298765432", "12"), "P5": ("+611300123456", None),
        "P6": ("+611800123456", None)}
got = {k: (p.get("phone_number"), p.get("properties", {}).get("PhoneExtension")) for k, p in profiles.items()}
assert got == want, got
dl = [json.loads(l) for l in open(w + "/dlq.jsonl") if l.strip()]
assert sorted(d["key"] for d in dl) == ["P7", "P8"], dl
for d in dl:
    h = dict(zip(d["headers"][0::2], d["headers"][1::2]))
    assert h["tillstream.reason"] == "NO_PROFILE_IDENTIFIER", h
    assert "phone number invalid" in h["tillstream.detail"], h
warn = [json.loads(l) for l in open(w + "/customers.log") if "SMS consent not sent" in l]
assert len(warn) == 1, warn          # four skips within a minute: one line
assert warn[0]["level"] == "warn" and warn[0]["message"].startswith("customer P"), warn
log = open(w + "/customers.log").read()
for digits in ("2079460958", "98765432", "1300123456", "1800123456", "9876 5432"):
    assert digits not in log, "a phone number in the log"
print("sms consent: 3 mobiles subscribed, 4 landline/1300/1800 skipped and counted, 2 invalid dead-lettered")
PY
