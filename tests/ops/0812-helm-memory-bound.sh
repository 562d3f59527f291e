#!/usr/bin/env bash
# The chart's memory check (docs/helm.md, "Memory bound"): `helm template`
# fails, naming the key path and the bound, when a tillstream-orders or
# tillstream-customers pod's memory limit is below docs/consumers.md's bound;
# both Deployments (and a backfill Job of either binary) carry the bound as an
# annotation. The expected figures come from bench/lib/membound.py (the
# bench's statement of the formulas), not from the chart; the formulas and the
# chart's defaults are checked against docs/consumers.md and
# docs/config-reference.md.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1   # bench/lib/membound.py is imported: no __pycache__ in the tree
export PATH="${TS_CACHE:-$HOME/.cache/tillstream}/bin:$PATH"
command -v helm >/dev/null || { echo "helm missing (scripts/helm.sh installs it)" >&2; exit 1; }
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
chart=$TS_SOURCE_DIR/helm/tillstream
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT

"$py" - "$chart" "$dir" "$TS_SOURCE_DIR" <<'PY'
import json, math, re, subprocess, sys, yaml
chart, d, src = sys.argv[1:4]

# the formula and the binary's defaults, as the docs state them
doc = open(f"{src}/docs/consumers.md").read()
assert "RSS <= 260 MiB + 113 B x customers + 10 MiB x accounts" in doc, "docs/consumers.md's bound changed: update the chart"
assert "+ 1.6 KB x min(accounts x (klaviyo.max_queued_events + 5)," in doc
assert "5 x consumer.max_inflight_records)" in doc
assert "RSS <= 160 MiB + 130 B x customers + 1.6 KB x consumer.max_inflight_records" in doc
ref = open(f"{src}/docs/config-reference.md").read()
def default(key):
    return int(re.search(r"^\| `%s` \|[^|]*\| `(\d+)` \|" % re.escape(key), ref, re.M).group(1))
QUEUED, INFLIGHT = default("klaviyo.max_queued_events"), default("consumer.max_inflight_records")
assert (QUEUED, INFLIGHT) == (20000, 50000), (QUEUED, INFLIGHT)   # the chart's helper has the same two

# the bench's statement of both formulas (bench/lib/membound.py): the chart must agree with it
sys.path.insert(0, f"{src}/bench/lib")
import membound

def bound_mib(accounts, customers=50000, queued=QUEUED, inflight=INFLIGHT):   # tillstream-orders
    cfg = {"klaviyo": {"max_queued_events": queued}, "consumer": {"max_inflight_records": inflight}}
    return math.ceil(membound.bound(cfg, accounts, 8, customers)["total"] / 2**20)

def cbound_mib(customers=50000, inflight=INFLIGHT):   # tillstream-customers
    return math.ceil(membound.customers_bound({"consumer": {"max_inflight_records": inflight}}, customers)["total"] / 2**20)

def values(n, **extra):
    v = {"accounts": [{"name": f"brand-{i}", "outlets": [str(100 + i)], "envVar": f"KLAVIYO_KEY_{i}",
                       "keyName": f"brand-{i}", "apiKey": "pk_test_x"} for i in range(n)]}
    for k, x in extra.items():
        cur = v
        *path, last = k.split(".")
        for p in path: cur = cur.setdefault(p, {})
        cur[last] = x
    return v

def render(name, v):
    f = f"{d}/{name}.yaml"
    yaml.safe_dump(v, open(f, "w"))
    r = subprocess.run(["helm", "template", "rel", chart, "-f", f], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr

def annotation(out, kind, component="orders"):
    docs = [x for x in yaml.safe_load_all(out) if x and x["kind"] == kind and
            x["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    assert len(docs) == 1, [x["metadata"]["name"] for x in docs]
    return int(docs[0]["metadata"]["annotations"]["tillstream.io/memory-bound-mib"])

ok = [   # name, accounts, extra values: each renders, with the bound computed above
    ("one-account", 1, {}, bound_mib(1)),
    ("eight-accounts", 8, {}, bound_mib(8)),   # 590 MiB: the default 640Mi limit holds
    ("million-customers", 8, {"memoryBound.customers": 1000000, "orders.resources.limits.memory": "1Gi",
                              "customers.resources.limits.memory": "400Mi"}, bound_mib(8, customers=1000000)),
    ("only-accounts", 12, {"routing.only_accounts": ["brand-0", "brand-1"]}, bound_mib(2)),
    ("smaller-queues", 12, {"klaviyo.max_queued_events": 10000}, bound_mib(12, queued=10000)),
    ("process-cap", 30, {"orders.resources.limits.memory": "1Gi"}, bound_mib(30)),   # 5 x 50,000 parts bind
    ("decimal-units", 9, {"orders.resources.limits.memory": "700M"}, bound_mib(9)),
    ("bytes", 9, {"orders.resources.limits.memory": 640 * 2**20}, bound_mib(9)),
    ("unchecked", 9, {"memoryBound.check": False}, bound_mib(9)),
    ("no-limit", 9, {"orders.resources.limits": None}, bound_mib(9)),   # null deletes the default limit
    ("unchecked-backfill", 9, {"memoryBound.check": False, "backfill.enabled": True}, bound_mib(9)),
    ("customers-sized", 1, {"memoryBound.customers": 1000000, "customers.resources.limits.memory": "384Mi"},
     bound_mib(1, customers=1000000)),   # 361 MiB <= 384Mi
]
assert cbound_mib() == 243 and cbound_mib(1000000) == 361 and cbound_mib(inflight=20000) == 197, cbound_mib()
assert bound_mib(8) == 590 and bound_mib(9) == 631 and bound_mib(30) == 947, (bound_mib(8), bound_mib(9), bound_mib(30))
for name, n, extra, want in ok:
    rc, out, err = render(name, values(n, **extra))
    assert rc == 0, (name, err)
    got = annotation(out, "Deployment")
    assert got == want, f"{name}: annotation {got} MiB, formula {want} MiB"
    v = values(n, **extra)
    c = cbound_mib(v.get("memoryBound", {}).get("customers", 50000), v.get("consumer", {}).get("max_inflight_records", INFLIGHT))
    assert annotation(out, "Deployment", "customers") == c, (name, annotation(out, "Deployment", "customers"), c)
rc, out, err = render("backfill", values(2, **{"backfill.enabled": True}))
assert rc == 0 and annotation(out, "Job", "backfill") == bound_mib(2), err
rc, out, err = render("customers-backfill", values(2, **{"backfill.enabled": True, "backfill.binary": "tillstream-customers"}))
assert rc == 0 and annotation(out, "Job", "backfill") == cbound_mib(), err

bad = [   # name, accounts, extra values, what the error must say
    ("ten-accounts", 10, {}, "orders.resources.limits.memory: 640Mi is below tillstream-orders' memory bound of "
                             "671 MiB (10 active accounts, klaviyo.max_queued_events 20000, "
                             "consumer.max_inflight_records 50000, memoryBound.customers 50000"),
    ("million-customers-512", 8, {"memoryBound.customers": 1000000, "customers.resources.limits.memory": "400Mi"},
     "orders.resources.limits.memory: 640Mi is below tillstream-orders' memory bound of %d MiB" % bound_mib(8, 1000000)),
    ("decimal-too-small", 9, {"orders.resources.limits.memory": "650M"}, "650M is below"),   # 620 MiB < 631
    ("backfill-orders", 2, {"backfill.enabled": True, "backfill.resources.limits.memory": "256Mi"},
     "backfill.resources.limits.memory: 256Mi is below tillstream-orders' memory bound of %d MiB" % bound_mib(2)),
    ("not-a-quantity", 1, {"orders.resources.limits.memory": "lots"},
     "orders.resources.limits.memory: lots is not a memory quantity"),
    ("negative-customers", 1, {"memoryBound.customers": -1}, "memoryBound.customers"),
    ("memory-share-above-1", 1, {"prometheusRule.enabled": True, "prometheusRule.memoryLimitShare": 1.5},
     "prometheusRule.memoryLimitShare"),
    ("customers-million", 1, {"memoryBound.customers": 1000000, "orders.resources.limits.memory": "1Gi"},
     "customers.resources.limits.memory: 256Mi is below tillstream-customers' memory bound of 361 MiB "
     "(consumer.max_inflight_records 50000, memoryBound.customers 1000000; docs/consumers.md, \"Consent state\"): "
     "raise the limit, lower consumer.max_inflight_records"),
    ("customers-backfill-small", 1, {"backfill.enabled": True, "backfill.binary": "tillstream-customers",
                                     "backfill.resources.limits.memory": "200Mi"},
     "backfill.resources.limits.memory: 200Mi is below tillstream-customers' memory bound of 243 MiB"),
]
for name, n, extra, want in bad:
    rc, out, err = render(name, values(n, **extra))
    assert rc != 0, f"{name}: rendered"
    assert want in err, f"{name}: {err.strip()}"
# the dead-letter stats CronJob (tillstream-dlq) is neither: no check, whatever its limit
rc, out, err = render("dlq-stats", values(1, **{"deadLetterStats.enabled": True,
                                                "deadLetterStats.resources.limits.memory": "16Mi"}))
assert rc == 0, err
# fewer in flight, a smaller customers bound: 20,000 records in flight fit 200Mi
rc, out, err = render("customers-fewer-inflight", values(1, **{"consumer.max_inflight_records": 20000,
                                                              "customers.resources.limits.memory": "200Mi"}))
assert rc == 0 and annotation(out, "Deployment", "customers") == cbound_mib(inflight=20000) == 197, err
print(f"helm memory bound: {len(ok) + 4} value sets render with the documented bounds, {len(bad)} are refused with the key path")
PY
