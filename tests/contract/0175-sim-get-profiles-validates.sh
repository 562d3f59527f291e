#!/usr/bin/env bash
# The simulator's Klaviyo profile model against the official files:
# - Bulk Subscribe removes UNSUBSCRIBE / SPAM_COMPLAINT / USER_SUPPRESSED
#   suppressions (bulk_subscribe_profiles.json says so) and keeps bounces;
# - the control call suppresses a profile as an unsubscribe link, a spam
#   report or a bounce would;
# - Get Profiles with filter=greater-than(subscriptions.email.marketing.
#   suppression.timestamp,...), additional-fields[profile]=subscriptions,
#   Klaviyo's default page size (read from get_profiles.json) and cursor
#   pagination by links.next returns each suppressed profile exactly once,
#   in timestamp order;
# - every 200 answer validates against get_profiles.json's response schema
#   and every 4xx against its error schema (independent validator:
#   tests/contract/validate.py, the jsonschema package); bad parameters
#   (page[size] over the spec's maximum, an unknown additional field, a
#   field the spec does not allow in a filter) are 400.
set -euo pipefail
. "$TS_SOURCE_DIR/tests/lib.sh"
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
start_sim
mkdir "$work/ok" "$work/err"
"$py" - "$sim_port" "$work" "$TS_SOURCE_DIR/../shared/klaviyo-openapi/get_profiles.json" <<'PY'
import json, os, sys, time, urllib.request, urllib.parse, urllib.error
port, work, spec_path = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
H = {"Authorization": "Klaviyo-API-Key pk_it_a", "revision": "2026-07-15",
     "Content-Type": "application/vnd.api+json", "accept": "application/vnd.api+json"}
saved = {"ok": 0, "err": 0}
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.environ["TS_SOURCE_DIR"] + "/tests/contract")
from simreq import request
def req(method, url, body=None, headers=H): return request(base, method, url, body, headers)
def get(url):
    st, b = req("GET", url)
    kind = "ok" if st == 200 else "err"
    saved[kind] += 1
    open(f"{work}/{kind}/get_profiles-{saved[kind]:04d}.json", "wb").write(b)
    return st, json.loads(b)
def subscribe(emails):
    body = {"data": {"type": "profile-subscription-bulk-create-job", "attributes": {
        "custom_source": "Point of sale", "profiles": {"data": [
            {"type": "profile", "attributes": {"email": e, "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}}
            for e in emails]}}}}
    st, _ = req("POST", "/api/profile-subscription-bulk-create-jobs", body); assert st == 202, st
def suppress(email, reason, ts):
    st, b = req("POST", "/__sim/accounts/brand-a/suppress",
                {"email": email, "channel": "email", "reason": reason, "timestamp": ts}, {})
    assert st == 200, (st, b)
def iso(t): return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))

spec = json.load(open(spec_path))
(path, ops), = spec["paths"].items()
params = {p["name"]: p for p in ops["get"]["parameters"]}
default_size = params["page[size]"]["schema"]["default"]
max_size = params["page[size]"]["schema"]["maximum"]
assert "subscriptions" in params["additional-fields[profile]"]["schema"]["items"]["enum"]
assert "`subscriptions.email.marketing.suppression.timestamp`: `greater-or-equal`, `greater-than`" in params["filter"]["description"]

emails = [f"p{i}@example.com" for i in range(45)]
subscribe(emails)
T0 = 1780000000  # 2026-05-28
reasons = ["UNSUBSCRIBE", "SPAM_COMPLAINT", "HARD_BOUNCE"]
for i in range(30):  # 30 suppressed, one second apart, reasons rotating
    suppress(emails[i], reasons[i % 3], iso(T0 + i))

flt = "greater-than(subscriptions.email.marketing.suppression.timestamp,%s)"
def all_pages(q):
    url, pages, seen = "/api/profiles?" + urllib.parse.urlencode(q), 0, []
    while url:
        st, doc = get(url); assert st == 200, doc
        pages += 1
        seen += doc["data"]
        url = doc["links"].get("next")
        assert pages < 100
    return pages, seen
q = {"filter": flt % iso(T0 - 1), "additional-fields[profile]": "subscriptions"}
pages, seen = all_pages(q)
assert len(seen) == 30 and pages == -(-30 // default_size), (len(seen), pages, default_size)
assert len({p["id"] for p in seen}) == 30, "each suppressed profile exactly once"
got = [(p["attributes"]["email"], p["attributes"]["subscriptions"]["email"]["marketing"]) for p in seen]
assert [e for e, _ in got] == emails[:30], "in suppression-timestamp order"
for i, (e, m) in enumerate(got):
    assert m["suppression"][0]["reason"] == reasons[i % 3] and m["suppression"][0]["timestamp"].startswith(iso(T0 + i)[:19]), m
    assert m["can_receive_email_marketing"] is False
    assert m["consent"] == ("SUBSCRIBED" if reasons[i % 3] == "HARD_BOUNCE" else "UNSUBSCRIBED"), m
pages7, seen7 = all_pages(dict(q, **{"page[size]": "7"}))
assert pages7 == 5 and [p["id"] for p in seen7] == [p["id"] for p in seen]
_, after = all_pages({"filter": flt % iso(T0 + 9), "additional-fields[profile]": "subscriptions"})
assert len(after) == 20 and after[0]["attributes"]["email"] == emails[10]
st, doc = get("/api/profiles?" + urllib.parse.urlencode({"filter": flt % iso(T0 - 1)}))
assert "subscriptions" not in doc["data"][0]["attributes"], "subscriptions only when asked for"
st, doc = get("/api/profiles")
assert len(doc["data"]) == default_size and "next" in doc["links"]

# a subscribe removes unsubscribe and spam suppressions, keeps the bounce
subscribe(emails[0:3])
stats = json.loads(req("GET", "/__sim/stats")[1])["accounts"]["brand-a"]
assert stats["suppressions_removed"] == 2 and stats["suppressed"] == 30, stats
for i in range(3):
    st, doc = get("/api/profiles?" + urllib.parse.urlencode(
        {"filter": f'equals(email,"{emails[i]}")', "additional-fields[profile]": "subscriptions"}))
    m = doc["data"][0]["attributes"]["subscriptions"]["email"]["marketing"]
    assert m["consent"] == "SUBSCRIBED", m
    assert (m["suppression"] == []) == (reasons[i] != "HARD_BOUNCE"), m
_, seen = all_pages(q)
assert len(seen) == 28

# bad parameters -> 400 with Klaviyo's error document
for bad in ({"page[size]": str(max_size + 1)}, {"page[size]": "0"},
            {"additional-fields[profile]": "lists"},
            {"filter": "greater-than(subscriptions.email.marketing.consent,2026-01-01T00:00:00Z)"},
            {"page[cursor]": "not-a-cursor"}):
    st, doc = get("/api/profiles?" + urllib.parse.urlencode(bad))
    assert st == 400 and doc["errors"][0]["source"]["parameter"] == next(iter(bad)), (bad, st, doc)
st, _ = req("GET", "/api/profiles", headers={"revision": "2026-07-15"})
assert st == 401
print(f"sim: {saved['ok']} Get Profiles pages, {saved['err']} errors checked")
PY
"$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --operation get_profiles --response 200 "$work"/ok/*.json
"$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --operation get_profiles --response 400 "$work"/err/*.json
echo "contract: simulator Get Profiles answers valid"
