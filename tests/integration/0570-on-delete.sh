#!/usr/bin/env bash
# customers.on_delete on the real broker + simulator:
# - delete: 6 customers are delivered; a later run (a new process: the
#   identifiers come back from the topic) consumes tombstones for 3 of them
#   and 1 unknown id: exactly one Request Profile Deletion per known
#   tombstone, for the account the customer routes to, by the email the
#   topic last knew; each logged with the customer id and never the email;
#   a further run sends nothing more;
# - ignore: a new group over the same topic (tombstones included) sends
#   no deletion.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json" '{"customers": {"on_delete": "delete"}}'
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
with open(w + "/customers.kv", "w") as f:
    for i in range(6):
        c = {"customer_id": f"E{i}", "email": f"e{i}@example.com", "phone": None, "first_name": "E",
             "last_name": str(i), "home_outlet_id": "201" if i == 2 else "101"}
        if i == 4: c["email"] = "e4.old@example.com"
        f.write(f"E{i}\t{json.dumps(c)}\n")
    c = {"customer_id": "E4", "email": "e4@example.com", "first_name": "E", "home_outlet_id": "101"}
    f.write(f"E4\t{json.dumps(c)}\n")   # the latest record of E4
PY
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/customers.kv"
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/c1.log" 2>&1
dels() { curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" | python3 -c 'import json,sys; a=json.load(sys.stdin)["accounts"]; print(a["brand-a"]["deletions"], a["brand-b"]["deletions"])'; }
[ "$(dels)" = "0 0" ]
printf 'E1:\nE2:\nE4:\nNOPE:\n' | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K: -Z
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/c2.log" 2>&1
[ "$(dels)" = "2 1" ] || { echo "deletions: $(dels), want 2 1" >&2; grep -i delet "$work/c2.log" >&2; exit 1; }
for a in brand-a brand-b; do curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/$a/deletions" >"$work/$a.del"; done
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
a = sorted(json.loads(l)["email"] for l in open(w + "/brand-a.del") if l.strip())
b = sorted(json.loads(l)["email"] for l in open(w + "/brand-b.del") if l.strip())
assert a == ["e1@example.com", "e4@example.com"], a   # E4 by the latest email
assert b == ["e2@example.com"], b
def objs(path):  # JSON log lines (stdout and stderr share the file: split glued lines)
    dec = json.JSONDecoder()
    for line in open(path):
        i = line.find("{")
        while 0 <= i < len(line):
            try:
                o, j = dec.raw_decode(line, i)
            except ValueError:
                break
            yield o
            i = line.find("{", j)
logs = list(objs(w + "/c2.log"))
req = [l for l in logs if "requesting the profile's deletion" in l.get("message", "")]
assert sorted(l["customer"] for l in req) == ["E1", "E2", "E4"], req
assert not any("@" in json.dumps(l) for l in req), req    # the customer id, never the email
unk = [l for l in logs if "has not seen" in l.get("message", "")]
assert [l["customer"] for l in unk] == ["NOPE"], unk
print("on_delete: 3 tombstones -> 3 deletions (2 brand-a, 1 brand-b), 1 unknown id -> none")
PY
timeout 60 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/c3.log" 2>&1
[ "$(dels)" = "2 1" ]
# ignore: a new group reads everything again, tombstones included: nothing deleted
write_config "$work/ignore.json" "{\"consumer\": {\"group_id_customers\": \"it-ignore-$sfx\"}}"
timeout 120 "$bin/tillstream-customers" --config "$work/ignore.json" --exit-at-end >"$work/c4.log" 2>&1
grep -q '"message":"summary","consumed":11,' "$work/c4.log" || { grep summary "$work/c4.log" >&2; exit 1; }
[ "$(dels)" = "2 1" ] || { echo "ignore sent deletions: $(dels)" >&2; exit 1; }
