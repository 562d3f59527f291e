#!/usr/bin/env bash
# tillstream-dlq on the real broker:
# - audit of a generated customers topic (latest record per key, tombstones
#   delete) reports exactly the known counts;
# - NO_HOME_OUTLET customers, redriven after a config fix (a default online
#   outlet), are delivered; a second redrive is a no-op; a dry run sends nothing;
# - loop safety: a record that fails again carries its redrive count and is
#   not re-sent past --max-redrives;
# - show prints the records with headers and decoded values.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json" '{"routing": {"default_online_outlet": null}}'
write_config "$work/fixed.json" '{"routing": {"default_online_outlet": "101"}}'
"$bin/tillstream-gen" --customers 3000 --orders 0 --seed 5 --keys --out-customers "$work/c.kv" >/dev/null
# an update (a customer moves to an unmapped outlet) and a deletion, after the originals
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
lines = [l.rstrip("\n").split("\t", 1) for l in open(w + "/c.kv")]
recs = {k: json.loads(v) for k, v in lines}
upd = dict(recs["C000001"], home_outlet_id="999")
with open(w + "/c.kv", "a") as f:
    f.write("C000001\t" + json.dumps(upd) + "\n")
recs["C000001"] = upd
del recs["C000002"]
json.dump(recs, open(w + "/latest.json", "w"))
PY
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/c.kv"
printf 'C000002\t' | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -Z   # tombstone

"$bin/tillstream-dlq" audit --config "$work/config.json" --json >"$work/audit.json"
"$bin/tillstream-dlq" audit --config "$work/config.json" | grep -c '^overall' >/dev/null
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
recs = json.load(open(w + "/latest.json")).values()
a = json.load(open(w + "/audit.json"))["overall"]
served = {"101", "102", "201", "202", "301"}
want = {"customers": len(recs),
        "no_home_outlet": sum(1 for r in recs if not r["home_outlet_id"]),
        "unmapped_outlet": sum(1 for r in recs if r["home_outlet_id"] and r["home_outlet_id"] not in served),
        "no_email_or_phone": sum(1 for r in recs if not r["email"] and not r["phone"]),
        "email_subscribed": sum(1 for r in recs if r["email_consent"] is True and r["email"]),
        "sms_subscribed": sum(1 for r in recs if r["sms_consent"] is True and r["phone"])}
assert a == want, (a, want)
PY

# a record with a binary key and a binary header that nobody can decode: its
# dead letter keeps both, and show prints them whole (base64), not cut at a NUL
printf '\000\377K\tnot json\n' | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' \
    -H $'trace=\xff\xfe' -H 'source=till-7'
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >/dev/null
"$bin/tillstream-dlq" show --config "$work/config.json" --reason DECODE_ERROR --json >"$work/show-bin.jsonl"
python3 - "$work" <<'PY'
import base64, json, sys
recs = [json.loads(l) for l in open(sys.argv[1] + "/show-bin.jsonl")]
assert len(recs) == 1, recs
r = recs[0]
assert "key" not in r and base64.b64decode(r["key_base64"]) == b"\x00\xffK", r
assert r["headers"]["source"] == "till-7" and "trace" not in r["headers"], r
assert base64.b64decode(r["headers_base64"]["trace"]) == b"\xff\xfe", r
assert r["value_raw"] == "not json", r
PY
# every record is processed (not only the latest per key): count records
nohome=$(python3 -c "
import json
print(sum(1 for l in open('$work/c.kv') if not json.loads(l.split('\t', 1)[1])['home_outlet_id']))")
# a redrive re-sends only the dead letters that are still the latest record of
# their key (C000002 was deleted after: its tombstone supersedes it)
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
rows = [l.rstrip("\n").split("\t", 1) for l in open(w + "/c.kv")]
last = {k: i for i, (k, _) in enumerate(rows)}
last["C000002"] = len(rows)   # the tombstone
nohome = [(i, k, json.loads(v)) for i, (k, v) in enumerate(rows) if not json.loads(v)["home_outlet_id"]]
live = [r for i, k, r in nohome if last[k] == i]
open(w + "/redrivable", "w").write("%d %d %d\n" % (len(live), len(nohome) - len(live),
    len({r["email"] or r["phone"] for r in live if r["email"] or r["phone"]})))
PY
read -r redrivable superseded deliverable <"$work/redrivable"
profiles() { curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" | python3 -c 'import json,sys; print(sum(a["profiles"] for a in json.load(sys.stdin)["accounts"].values()))'; }
before=$(profiles)

"$bin/tillstream-dlq" show --config "$work/config.json" --reason NO_HOME_OUTLET --json >"$work/show.jsonl" 2>/dev/null
[ "$(grep -c . "$work/show.jsonl")" = "$nohome" ]
python3 -c "
import json
r = json.loads(open('$work/show.jsonl').readline())
assert r['headers']['tillstream.reason'] == 'NO_HOME_OUTLET' and r['value']['customer_id'] == r['key']"

"$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason NO_HOME_OUTLET --group "rd-$sfx" --dry-run >"$work/dry.txt"
grep -q "dry run: $redrivable record(s) would be redriven, 0 at the redrive limit (3), $superseded superseded" "$work/dry.txt" || { cat "$work/dry.txt" >&2; exit 1; }
"$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason NO_HOME_OUTLET --group "rd-$sfx" >"$work/rd1.txt"
grep -q "^$redrivable record(s) redriven, 0 at the redrive limit (3), $superseded superseded" "$work/rd1.txt" || { cat "$work/rd1.txt" >&2; exit 1; }
timeout 120 "$bin/tillstream-customers" --config "$work/fixed.json" --exit-at-end >/dev/null
after=$(profiles)
# each redriven customer with an email or a phone is now a profile (the others
# dead-letter again as NO_PROFILE_IDENTIFIER: the fix did not give them one)
[ "$after" = $((before + deliverable)) ] || { echo "profiles $before -> $after, want +$deliverable" >&2; exit 1; }
"$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason NO_HOME_OUTLET --group "rd-$sfx" >"$work/rd2.txt"
grep -q '^0 record(s) redriven' "$work/rd2.txt"

# loop safety: unmapped outlets are not fixed; redrive once, they fail again, and stop
unmapped=$(python3 -c "
import json
print(sum(1 for l in open('$work/c.kv') if json.loads(l.split('\t', 1)[1])['home_outlet_id'] == '999'))")
"$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason UNMAPPED_OUTLET --group "ru-$sfx" --max-redrives 1 >/dev/null
timeout 120 "$bin/tillstream-customers" --config "$work/fixed.json" --exit-at-end >/dev/null
"$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason UNMAPPED_OUTLET --group "ru-$sfx" --max-redrives 1 >"$work/ru2.txt"
grep -q "^0 record(s) redriven, $unmapped at the redrive limit (1)" "$work/ru2.txt" || { cat "$work/ru2.txt" >&2; exit 1; }
"$bin/tillstream-dlq" stats --config "$work/config.json" --json | python3 -c "
import json, sys
s = json.load(sys.stdin)
assert s['by_reason']['UNMAPPED_OUTLET'] == 2 * $unmapped, s"
echo "dlq: audit exact, $redrivable of $nohome NO_HOME_OUTLET redriven ($superseded superseded) and delivered, second redrive no-op, $unmapped unfixable records stopped at the limit"
