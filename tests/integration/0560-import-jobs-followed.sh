#!/usr/bin/env bash
# Profile-import jobs followed to the end, on the real broker + simulator:
# - 12 customers, 3 of them refused by Klaviyo inside the import job (an
#   email with nothing before the @, one with nothing after it, another with
#   nothing before it; an invalid phone no longer reaches Klaviyo: libphonenumber drops
#   it before the import, see 0550): while the job is pending nothing is
#   dead-lettered and no offset is committed; tillstream-customers is
#   killed (SIGKILL) with the job still pending;
# - restarted (jobs now complete after 300 ms) it consumes all 12 again
#   (no offset passed a pending record), dead-letters exactly those 3 with
#   KLAVIYO_REJECTED and the job's detail, delivers the 9 others, and the
#   simulator holds each of the 9 profiles once and nothing for the 3;
# - topics.profiles holds exactly one Klaviyo profile id per delivered
#   customer (key = external_id), none for the 3, and none was written
#   while the job was pending;
# - a third run finds nothing new (offsets committed once jobs completed).
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim --job-delay-ms -1
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.klaviyo.profiles.$sfx" 1 compact
write_config "$work/config.json" "{\"kafka\": {\"session.timeout.ms\": \"6000\", \"heartbeat.interval.ms\": \"500\"},
  \"topics\": {\"profiles\": \"pos.klaviyo.profiles.$sfx\"}}"
read_profiles() { kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "pos.klaviyo.profiles.$sfx" -e -q -J 2>/dev/null || true; }
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
with open(w + "/customers.kv", "w") as f:
    for i in range(12):
        c = {"customer_id": f"J{i}", "email": f"j{i}@example.com", "phone": None,
             "first_name": "J", "last_name": str(i), "home_outlet_id": "101"}
        if i == 3: c["email"] = "@example.com"
        if i == 7: c["email"] = "j7@"
        if i == 10: c["email"] = "@j10.example.com"
        f.write(f"J{i}\t{json.dumps(c)}\n")
PY
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/customers.kv"
stat() { curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['accounts']['brand-a']['$1'])"; }

# 1: the job stays pending; the consumer is killed while it is
"$bin/tillstream-customers" --config "$work/config.json" >"$work/c1.log" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 1 300); do [ "$(stat job_polls)" -ge 3 ] && break; sleep 0.1; done
[ "$(stat job_polls)" -ge 3 ] || { echo "the pending job was not polled" >&2; tail -5 "$work/c1.log" >&2; exit 1; }
[ "$(stat import_jobs)" -ge 1 ]
sleep 1.5 # past the consumer's 1 s offset commit interval: nothing may be committed
[ -z "$(read_dlq)" ] || { echo "dead letters while the job was pending" >&2; exit 1; }
[ -z "$(read_profiles)" ] || { echo "profile ids written while the job was pending" >&2; exit 1; }
kill -9 "$pid"
wait "$pid" 2>/dev/null || true

# 2: jobs complete now; everything is consumed again and settles
curl -fsS -X POST --data '{"delay_ms": 300}' "http://127.0.0.1:$sim_port/__sim/jobs" >/dev/null
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/c2.log" 2>&1
grep -q '"message":"summary","consumed":12,' "$work/c2.log" ||
  { grep summary "$work/c2.log" >&2; echo "not all 12 records were consumed again: an offset passed a pending job" >&2; exit 1; }
read_dlq >"$work/dlq.json"
read_profiles >"$work/ids.json"
curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/brand-a/profiles" >"$work/profiles.jsonl"
curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" >"$work/stats.json"
python3 - "$work" <<'PY'
import json, sys, collections
w = sys.argv[1]
dlq = [json.loads(l) for l in open(w + "/dlq.json") if l.strip()]
hd = lambda r: dict(zip(r["headers"][0::2], r["headers"][1::2]))
keys = collections.Counter(r["key"] for r in dlq)
assert keys == collections.Counter(["J3", "J7", "J10"]), keys   # exactly those, once each
for r in dlq:
    h = hd(r)
    assert h["tillstream.reason"] == "KLAVIYO_REJECTED", h
    d = h["tillstream.detail"]
    assert "Klaviyo import job sim-job-" in d, d
    assert "Invalid email address" in d, d
    assert "/data/attributes/profiles/data/" in d, d
st = json.load(open(w + "/stats.json"))["accounts"]["brand-a"]
assert st["profiles"] == 9, st                  # each delivered profile once (a set of identities)
assert st["import_errors"] >= 3 and st["import_jobs"] >= 2, st
sent = {json.loads(l).get("external_id") for l in open(w + "/profiles.jsonl") if l.strip()}
assert sent == {f"J{i}" for i in range(12)} - {"J3", "J7", "J10"}, sent
ids = [json.loads(l) for l in open(w + "/ids.json") if l.strip()]
by_key = collections.defaultdict(set)
for r in ids:
    v = json.loads(r["payload"])
    assert r["key"] == v["external_id"], r
    assert set(v) == {"account", "external_id", "profile_id", "email", "phone_number"}, v
    assert v["account"] == "brand-a" and v["profile_id"] and v["email"] == f"j{v['external_id'][1:]}@example.com", v
    by_key[r["key"]].add(v["profile_id"])
assert set(by_key) == sent, set(by_key)                 # every delivered customer, none of the 3
assert all(len(p) == 1 for p in by_key.values()), by_key  # one id each
assert len(ids) == 9, len(ids)
print(f"jobs: 3 records dead-lettered from inside the job, 9 delivered; {st['import_jobs']} jobs, "
      f"{st['job_polls']} job reads")
PY

# 3: offsets were committed once the jobs completed
timeout 60 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/c3.log" 2>&1
grep -q '"message":"summary","consumed":0,' "$work/c3.log" || { grep summary "$work/c3.log" >&2; echo "re-consumed: offsets not committed" >&2; exit 1; }
