#!/usr/bin/env bash
# The consent decision table (docs/consent.md) from one input file through
# the real binary: the dry run carries the consent state across lines in
# order, --suppressions loads Klaviyo's suppressions first, and each line
# shows exactly what would be sent ("subscriptions" only where a change is
# sent, "consent_blocked" where a suppression stopped it, "consent_reoptin"
# for a fresh opt-in over an older suppression). Prints the table. Then
# customers.sync = consented over the same file. No Kafka, no Klaviyo.
set -euo pipefail
bin=$TS_BIN_DIR src=$TS_SOURCE_DIR
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
unset KLAVIYO_KEY_BRAND_A KLAVIYO_KEY_BRAND_B KLAVIYO_KEY_BRAND_C
cfg=$src/samples/config.sandbox.json
in=$src/tests/integration/consent/customers.jsonl
sup=$src/tests/integration/consent/suppressions.jsonl

"$bin/tillstream-customers" --config "$cfg" --dry-run --input "$in" --suppressions "$sup" \
    >"$dir/out" 2>"$dir/log"
python3 - "$cfg" "$dir" >"$dir/consented.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["customers"] = {"sync": "consented"}; print(json.dumps(c))
PY
"$bin/tillstream-customers" --config "$dir/consented.json" --dry-run --input "$in" \
    --suppressions "$sup" >"$dir/consented.out" 2>/dev/null
# without --suppressions nothing is blocked: line 8 subscribes
"$bin/tillstream-customers" --config "$cfg" --dry-run --input "$in" >"$dir/nosup.out" 2>/dev/null
# a malformed suppression line is an error naming file:line (exit 2)
printf '%s\n' '{"account":"brand-a","channel":"push","reason":"UNSUBSCRIBE","timestamp":1}' >"$dir/bad.jsonl"
rc=0; "$bin/tillstream-customers" --config "$cfg" --dry-run --input "$in" --suppressions "$dir/bad.jsonl" \
    >/dev/null 2>"$dir/bad.err" || rc=$?
[ "$rc" = 2 ] || { echo "bad suppression file: exit $rc, want 2" >&2; exit 1; }
grep -q 'bad.jsonl:1: suppression: channel' "$dir/bad.err" || { cat "$dir/bad.err" >&2; exit 1; }

python3 - "$dir" "$in" <<'PY'
import json, sys
d, src = sys.argv[1], sys.argv[2]
ins = [json.loads(l) for l in open(src)]
out = [json.loads(l) for l in open(d + "/out")]
assert [x["input"] for x in out] == list(range(1, len(ins) + 1))
def shown(x):
    subs = [p["subscriptions"] for p in x["profiles"] if "subscriptions" in p]
    r = []
    for s in subs:
        for ch, v in sorted(s.items()): r.append(f"{ch} {v}")
    for k in ("consent_blocked", "consent_blocked_sms"):
        if k in x: r.append(f"{x[k]['channel']} blocked {x[k]['reason']}")
    if "consent_reoptin" in x: r.append(f"{x['consent_reoptin']['channel']} re-opt-in over {x['consent_reoptin']['reason']}")
    return ", ".join(r) or "nothing"
# line -> (case of docs/consent.md, what is sent)
want = {
 1: ("unknown changes nothing", "nothing"),
 2: ("true, first seen", "email SUBSCRIBED"),
 3: ("true after true (another POS update)", "nothing"),
 4: ("false after true", "email UNSUBSCRIBED"),
 5: ("false after false", "nothing"),
 6: ("true after false", "email SUBSCRIBED"),
 7: ("false, first seen", "email UNSUBSCRIBED"),
 8: ("true first seen over an unsubscribe, only updated_at newer", "email blocked UNSUBSCRIBE"),
 9: ("true while blocked (POS update)", "email blocked UNSUBSCRIBE"),
 10: ("email_consent_at newer than the suppression", "email SUBSCRIBED, email re-opt-in over UNSUBSCRIBE"),
 11: ("same email_consent_at again: exactly once", "nothing"),
 12: ("spam report keyed by email, consent time older", "email blocked SPAM_COMPLAINT"),
 13: ("false over a suppression", "email UNSUBSCRIBED"),
 14: ("false -> true seen after the suppression", "email SUBSCRIBED, email re-opt-in over UNSUBSCRIBE"),
 15: ("false over a bounce", "email UNSUBSCRIBED"),
 16: ("false -> true older than the suppression", "email blocked HARD_BOUNCE"),
 17: ("sms suppressed by phone, email free", "email SUBSCRIBED, sms blocked UNSUBSCRIBE"),
 18: ("no email: the email channel is untouched", "nothing"),
}
assert len(want) == len(out)
bad = 0
print(f"{'line':>4}  {'case':<58} sent")
for x in out:
    case, w = want[x["input"]]
    got = shown(x)
    mark = "" if got == w else f"   <-- want: {w}"
    bad += got != w
    print(f"{x['input']:>4}  {case:<58} {got}{mark}")
assert not bad, f"{bad} lines differ from the decision table"
log = open(d + "/log").read()
assert log.count("re-opt-in") == 2, log
# customers.sync = consented: no consent on any channel -> skipped, except
# a change to false, which is sent as an unsubscribe without the profile
con = {x["input"]: x for x in map(json.loads, open(d + "/consented.out"))}
assert con[1]["skipped"] == "NOT_CONSENTED" and con[1]["profiles"] == [], con[1]
assert con[5]["skipped"] == "NOT_CONSENTED", con[5]
assert con[7]["skipped"] is None and con[7]["profiles"] == [
    {"email": "c3@example.com", "subscriptions": {"email": "UNSUBSCRIBED"}}], con[7]
assert con[2]["profiles"][0]["external_id"] == "C2", con[2]
nos = {x["input"]: x for x in map(json.loads, open(d + "/nosup.out"))}
assert nos[8]["profiles"][0]["subscriptions"] == {"email": "SUBSCRIBED"} and "consent_blocked" not in nos[8]
print("dry run: decision table, 18 lines as documented; customers.sync = consented")
PY
