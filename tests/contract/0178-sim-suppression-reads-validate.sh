#!/usr/bin/env bash
# The simulator's answers to what tillstream-suppressions reads, against
# the official files' response schemas (independent validator:
# tests/contract/validate.py, the jsonschema package):
# - Get Profiles with the poller's query (greater-or-equal on the email
#   suppression timestamp, sort on it, additional-fields[profile]=
#   subscriptions, page[size]) over several pages;
# - Get Metrics: Klaviyo's "Unsubscribed from SMS Marketing" metric;
# - Get Events of that metric, datetime >= W, sort=datetime, include=
#   profile, page[size]=2: every SMS unsubscribe exactly once, in time
#   order, with its profile included;
# - query parameters the operation does not define, a sort outside its
#   enum and a filter on a field the spec does not allow are 400 with
#   Klaviyo's error document, which validates too;
# - a broken answer fails the validator (negative control).
set -euo pipefail
. "$TS_SOURCE_DIR/tests/lib.sh"
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
start_sim
mkdir -p "$work/get_profiles/ok" "$work/get_metrics/ok" "$work/get_events/ok" \
  "$work/get_profiles/err" "$work/get_metrics/err" "$work/get_events/err"
"$py" - "$sim_port" "$work" "$TS_SOURCE_DIR/../shared/klaviyo-openapi" <<'PY'
import json, os, sys, time, urllib.request, urllib.parse, urllib.error
port, work, spec_dir = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
H = {"Authorization": "Klaviyo-API-Key pk_it_a", "revision": "2026-07-15",
     "accept": "application/vnd.api+json"}
n = {}
sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.environ["TS_SOURCE_DIR"] + "/tests/contract")
from simreq import request
def req(method, url, body=None, headers=H): return request(base, method, url, body, headers)
def get(op, url):
    st, b = req("GET", url)
    kind = "ok" if st == 200 else "err"
    n[(op, kind)] = n.get((op, kind), 0) + 1
    open(f"{work}/{op}/{kind}/{n[(op, kind)]:04d}.json", "wb").write(b)
    return st, json.loads(b)
def pages(op, url):
    out, k = [], 0
    while url:
        st, doc = get(op, url); assert st == 200, doc
        out.append(doc); url = doc["links"].get("next"); k += 1
        assert k < 50
    return out
def suppress(body):
    st, b = req("POST", "/__sim/accounts/brand-a/suppress", body, {}); assert st == 200, (st, b)
def iso(ms): return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)

specs = {op: json.load(open(f"{spec_dir}/{op}.json")) for op in ("get_profiles", "get_metrics", "get_events")}
def params(op):
    (path, ops), = specs[op]["paths"].items()
    return {p["name"]: p for p in ops["get"]["parameters"] if p.get("in") == "query"}
# what the poller sends is what the files define
for q in ("filter", "sort", "additional-fields[profile]", "page[size]", "page[cursor]"):
    assert q in params("get_profiles"), q
assert "subscriptions.email.marketing.suppression.timestamp" in params("get_profiles")["sort"]["schema"]["enum"]
assert "`subscriptions.email.marketing.suppression.timestamp`: `greater-or-equal`" in params("get_profiles")["filter"]["description"]
for q in ("filter", "sort", "include", "fields[profile]", "page[size]"):
    assert q in params("get_events"), q
assert "`metric_id`: `equals`" in params("get_events")["filter"]["description"]
assert "`datetime`: `greater-or-equal`" in params("get_events")["filter"]["description"]
assert "profile" in params("get_events")["include"]["schema"]["items"]["enum"]

T0 = 1780000000000
for i in range(12):
    suppress({"email": f"e{i}@example.com", "external_id": f"E{i}", "channel": "email",
              "reason": ["UNSUBSCRIBE", "SPAM_REPORT", "HARD_BOUNCE"][i % 3], "timestamp": T0 + (i // 2) * 1000})
for i in range(5):
    suppress({"phone_number": f"+6141234567{i}", "external_id": f"S{i}", "channel": "sms",
              "reason": "UNSUBSCRIBE", "timestamp": T0 + 60000 + i * 1500})

# Get Profiles, as the poller asks
q = {"filter": f"greater-or-equal(subscriptions.email.marketing.suppression.timestamp,{iso(T0 + 2000)})",
     "sort": "subscriptions.email.marketing.suppression.timestamp",
     "additional-fields[profile]": "subscriptions", "page[size]": "3"}
docs = pages("get_profiles", "/api/profiles/?" + urllib.parse.urlencode(q))
got = [p["attributes"]["external_id"] for d in docs for p in d["data"]]
assert got == [f"E{i}" for i in range(4, 12)], got
assert len(docs) == 3

# Get Metrics: the SMS unsubscribe metric
docs = pages("get_metrics", "/api/metrics/?fields%5Bmetric%5D=name")
mid = [m["id"] for d in docs for m in d["data"] if m["attributes"]["name"] == "Unsubscribed from SMS Marketing"]
assert len(mid) == 1, docs
mid = mid[0]
st, d = get("get_metrics", "/api/metrics/?filter=" + urllib.parse.quote("equals(integration.name,'Klaviyo')"))
assert st == 200 and d["data"]

# Get Events of that metric from the second SMS unsubscribe's second
flt = f'and(equals(metric_id,"{mid}"),greater-or-equal(datetime,{time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime((T0 + 61500) // 1000))}))'
q = {"filter": flt, "sort": "datetime", "include": "profile",
     "fields[profile]": "email,phone_number,external_id", "page[size]": "2"}
docs = pages("get_events", "/api/events/?" + urllib.parse.urlencode(q))
evs = [(e, d) for d in docs for e in d["data"]]
assert len(docs) == 2 and len(evs) == 4, [len(d["data"]) for d in docs]
ts = [e["attributes"]["timestamp"] for e, _ in evs]
assert ts == sorted(ts) and ts[0] == (T0 + 61500) // 1000, ts
for e, d in evs:
    pid = e["relationships"]["profile"]["data"]["id"]
    inc = [p for p in d.get("included", []) if p["type"] == "profile" and p["id"] == pid]
    assert len(inc) == 1 and inc[0]["attributes"]["external_id"].startswith("S"), (e, d.get("included"))
assert len({e["id"] for e, _ in evs}) == 4
# another metric has no events here
st, d = get("get_events", "/api/events/?" + urllib.parse.urlencode({"filter": 'equals(metric_id,"RcvEml")'}))
assert st == 200 and d["data"] == []

# bad parameters -> 400 naming the parameter
for op, url, param in (
        ("get_profiles", "/api/profiles/?page%5Bfoo%5D=1", "page[foo]"),
        ("get_profiles", "/api/profiles/?sort=phone_number", "sort"),
        ("get_metrics", "/api/metrics/?page%5Bsize%5D=5", "page[size]"),
        ("get_events", "/api/events/?" + urllib.parse.urlencode({"filter": "greater-than(profile_id,x)"}), "filter"),
        ("get_events", "/api/events/?sort=name", "sort"),
        ("get_events", "/api/events/?page%5Bsize%5D=1001", "page[size]"),
        ("get_events", "/api/events/?include=lists", "include")):
    st, doc = get(op, url)
    assert st == 400 and doc["errors"][0]["source"]["parameter"] == param, (url, st, doc)
st, _ = req("POST", "/api/metrics/", {})
assert st == 405
print("sim: " + ", ".join(f"{op} {k} {c}" for (op, k), c in sorted(n.items())))
PY
for op in get_profiles get_metrics get_events; do
  "$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --operation "$op" --response 200 "$work/$op"/ok/*.json
  "$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --operation "$op" --response 400 "$work/$op"/err/*.json
done
# negative control: an event without its required links fails
python3 - "$work/get_events/ok/0001.json" "$work/broken.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); del d["data"][0]["links"]; json.dump(d, open(sys.argv[2], "w"))
PY
if "$py" "$TS_SOURCE_DIR/tests/contract/validate.py" --operation get_events --response 200 "$work/broken.json" >/dev/null 2>&1; then
  echo "FAIL: the validator accepted an event without links" >&2; exit 1
fi
echo "contract: simulator Get Profiles / Get Metrics / Get Events answers valid"
