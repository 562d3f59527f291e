#!/usr/bin/env bash
# End to end on the real broker: the sample customers and orders (in-store,
# online, missing/unmapped Home Outlet, no email/phone, test, voided,
# repeated SKUs, unknown customer) plus undecodable bytes go through both
# consumers into the Klaviyo simulator. The simulator must hold exactly the
# events the mapping says (per account, by metric and unique_id), the
# dead-letter topic exactly the expected records with their reasons,
# original bytes and headers; offsets must be committed (a second run
# consumes nothing).
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json"
produce_samples
printf 'garbage-1\t\x00\x00\x00\x00\x07not avro\n' | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t'
printf 'garbage-2\t{"order_id": "G2", "status": "completed"\n' | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t'

timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/customers.log"
timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/orders.log"

# what the mapping says should arrive (the offline pipeline over the same inputs)
"$bin/tillstream-customers" --config "$work/config.json" --dry-run --input "$src/samples/customers.jsonl" >"$work/c.dry"
"$bin/tillstream-orders" --config "$work/config.json" --dry-run --input "$src/samples/orders.jsonl" \
    --customers "$src/samples/customers.jsonl" >"$work/o.dry"
for a in brand-a brand-b brand-c; do
  curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/$a/events" >"$work/$a.events"
  curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/$a/profiles" >"$work/$a.profiles"
done
curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" >"$work/stats.json"
read_dlq >"$work/dlq.json"

python3 - "$work" "$src/samples" <<'PY'
import json, sys, collections
w, samples = sys.argv[1], sys.argv[2]
load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
c_dry, o_dry = load(w + "/c.dry"), load(w + "/o.dry")
stats = json.load(open(w + "/stats.json"))["accounts"]
# events: exactly the expected (metric, unique_id) per account, each once
for acct in ("brand-a", "brand-b", "brand-c"):
    want = collections.Counter((e["metric"]["data"]["attributes"]["name"], e["unique_id"])
                               for r in o_dry if r["account"] == acct and not r["dead_letter"] and not r["skipped"]
                               for e in r["events"])
    got = collections.Counter((e["metric"], e["unique_id"]) for e in load(f"{w}/{acct}.events"))
    assert got == want, (acct, set(want) ^ set(got))
    assert stats[acct]["events_recorded"] == sum(want.values())
    assert stats[acct]["duplicates_ignored"] == 0
    profiles = {p["external_id"] for p in load(f"{w}/{acct}.profiles")}
    want_p = {r["profiles"][0]["external_id"] for r in c_dry if r["account"] == acct and not r["dead_letter"] and r["profiles"]}
    assert profiles == want_p, (acct, profiles ^ want_p)
    subs = sum(1 for r in c_dry if r["account"] == acct and r["profiles"]
               for v in r["profiles"][0].get("subscriptions", {}).values() if v == "SUBSCRIBED")
    assert stats[acct]["subscribed"] == subs, (acct, stats[acct]["subscribed"], subs)
# money arrives exact
ev = [e for e in load(w + "/brand-a.events") if e["unique_id"] == "O5022"]
assert ev and ev[0]["value"] == 335.99
assert '"value":335.99' in open(w + "/brand-a.events").read()

# dead letters: the expected reasons, the original bytes, the headers
dlq = load(w + "/dlq.json")
def h(r):
    return {k: v for hv in (r.get("headers") or []) for k, v in [hv] } if isinstance(r.get("headers"), dict) else dict(zip(r["headers"][0::2], r["headers"][1::2]))
want_reasons = collections.Counter(r["dead_letter"]["reason"] for r in c_dry + o_dry if r["dead_letter"])
want_reasons["DECODE_ERROR"] += 2
got_reasons = collections.Counter(h(r)["tillstream.reason"] for r in dlq)
assert got_reasons == want_reasons, (got_reasons, want_reasons)
orig = {}
for name, key in (("customers", "customer_id"), ("orders", "order_id")):
    for line in open(f"{samples}/{name}.jsonl"):
        if line.strip(): orig[json.loads(line)[key]] = line.strip()
for r in dlq:
    hd = h(r)
    for k in ("tillstream.detail", "tillstream.source.topic", "tillstream.source.partition", "tillstream.source.offset",
              "tillstream.consumer", "__connect.errors.topic", "__connect.errors.offset", "__connect.errors.exception.message"):
        assert hd.get(k), (k, hd)
    assert "pk_it_" not in json.dumps(r), "an API key leaked into a dead letter"
    if r["key"] in orig:
        assert r["payload"] == orig[r["key"]], r["key"]
g = [r for r in dlq if r["key"] == "garbage-2"][0]
assert g["payload"] == '{"order_id": "G2", "status": "completed"', "original bytes kept"
assert "invalid JSON at byte" in h(g)["tillstream.detail"]
u = [r for r in dlq if h(r)["tillstream.reason"] == "UNKNOWN_CUSTOMER"]
assert u and h(u[0])["tillstream.consumer"] == "tillstream-orders"
print("e2e: %d events over 3 accounts, %d dead letters, reasons %s" % (
      sum(s["events_recorded"] for s in stats.values()), len(dlq), dict(got_reasons)))
PY

# tillstream-dlq stats counts exactly the dead letters that are there
"$bin/tillstream-dlq" stats --config "$work/config.json" --json >"$work/stats-dlq.json"
"$bin/tillstream-dlq" stats --config "$work/config.json" | grep -c '^dead-letter topic pos.deadletter' >/dev/null
python3 - "$work" <<'PY'
import json, sys, collections
w = sys.argv[1]
dlq = [json.loads(l) for l in open(w + "/dlq.json") if l.strip()]
st = json.load(open(w + "/stats-dlq.json"))
hs = [dict(zip(r["headers"][0::2], r["headers"][1::2])) for r in dlq]
assert st["total"] == len(dlq)
for field, key in (("by_reason", "tillstream.reason"), ("by_source_topic", "tillstream.source.topic"),
                   ("by_account", "tillstream.account"), ("by_outlet", "tillstream.outlet")):
    want = collections.Counter(h.get(key, "(none)") for h in hs)
    assert st[field] == dict(want), (field, st[field], want)
assert sum(st["by_day"].values()) == len(dlq) and st["oldest"] <= st["newest"]
print("dlq stats: equal to the %d records in the topic" % len(dlq))
PY

# offsets were committed: the same groups find nothing new
timeout 60 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/orders2.log"
grep -q '"message":"summary","consumed":0,' "$work/orders2.log" || { tail -3 "$work/orders2.log" >&2; echo "orders were re-consumed: offsets not committed" >&2; exit 1; }
timeout 60 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/customers2.log"
grep -q '"message":"summary","consumed":0,' "$work/customers2.log"
