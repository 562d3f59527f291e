#!/usr/bin/env bash
# scripts/sandbox.sh - the README's first command: set up a fresh machine,
# build, and run the main job on an embedded default - a local sandbox:
#   librdkafka's mock cluster (tillstream-sandbox-kafka), the Klaviyo
#   simulator, the sample POS data in samples/, both consumers run with
#   --exit-at-end until caught up, then a summary: events accepted per
#   Klaviyo account and dead-letter records by reason.
# Everything binds to 127.0.0.1 and is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
[ "${TS_SKIP_SETUP:-0}" = 1 ] || TS_SETUP_MINIMAL=1 "$here/scripts/setup.sh"
bin=${TS_BUILD_DIR:-$here/build}

if [ ! -x "$bin/tillstream-klaviyo-sim" ] || [ "${TS_SANDBOX_OFFLINE:-0}" = 1 ]; then
  # Offline pipeline: the same decode -> route -> map code, no Kafka, no Klaviyo.
  echo "sandbox: offline pipeline (dry run) over samples/" >&2
  out=$(mktemp -d)
  "$bin/tillstream-customers" --config samples/config.sandbox.json --dry-run \
      --input samples/customers.jsonl >"$out/customers.out"
  "$bin/tillstream-orders" --config samples/config.sandbox.json --dry-run \
      --input samples/orders.jsonl --customers samples/customers.jsonl >"$out/orders.out"
  python3 - "$out" <<'PY'
import json, sys, collections
d = sys.argv[1]
for kind in ("customers", "orders"):
    rows = [json.loads(l) for l in open(f"{d}/{kind}.out")]
    per = collections.Counter(); metrics = collections.Counter()
    for r in rows:
        if r["account"] and not r["dead_letter"] and not r["skipped"]:
            per[r["account"]] += len(r["events"]) or len(r["profiles"])
            for e in r["events"]:
                metrics[(r["account"], e["metric"]["data"]["attributes"]["name"])] += 1
    dl = collections.Counter(r["dead_letter"]["reason"] for r in rows if r["dead_letter"])
    sk = collections.Counter(r["skipped"] for r in rows if r["skipped"])
    print(f"\n{kind}: {len(rows)} records")
    print("  would be accepted, per Klaviyo account (%s)" % ("events" if kind == "orders" else "profiles"))
    for a, n in sorted(per.items()):
        print(f"    {a:<10} {n:6d}")
        for (acc, m), k in sorted(metrics.items()):
            if acc == a: print(f"      {m:<22} {k:6d}")
    print("  dead-letter records by reason")
    for r, n in sorted(dl.items()): print(f"    {r:<24} {n:6d}")
    if sk: print("  skipped (counted, not sent): " + ", ".join(f"{k} {v}" for k, v in sorted(sk.items())))
PY
  rm -rf "$out"
  exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/tillstream-sandbox.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_file() { for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "sandbox: $1 did not appear" >&2; return 1; }

# Sandbox API keys: local, throwaway, only in this process tree's environment.
export KLAVIYO_KEY_BRAND_A=pk_sandbox_brand_a KLAVIYO_KEY_BRAND_B=pk_sandbox_brand_b \
       KLAVIYO_KEY_BRAND_C=pk_sandbox_brand_c

echo "sandbox: starting the mock Kafka cluster and the Klaviyo simulator" >&2
"$bin/tillstream-sandbox-kafka" --topic pos.customers:3 --topic pos.orders:3 --topic tillstream.customers.state:3 \
    --topic pos.klaviyo.suppressions:1 --topic tillstream.suppressions.state:1 \
    --topic pos.deadletter:1 --bootstrap-file "$work/bootstrap" >/dev/null &
pids+=($!)
"$bin/tillstream-klaviyo-sim" --listen 127.0.0.1:0 --port-file "$work/sim.port" \
    --account brand-a=KLAVIYO_KEY_BRAND_A --account brand-b=KLAVIYO_KEY_BRAND_B \
    --account brand-c=KLAVIYO_KEY_BRAND_C >/dev/null 2>"$work/sim.log" &
pids+=($!)
wait_file "$work/bootstrap"; wait_file "$work/sim.port"
bootstrap=$(cat "$work/bootstrap"); port=$(cat "$work/sim.port")
# a schema registry for the Avro part: the light stand-in (Python standard
# library), not the PostgreSQL-backed one the tests run
registry=$(TS_REGISTRY_IMPL=standin "$here/scripts/registry.sh" start "$work/registry")
pids+=($(cat "$work/registry/pid"))

python3 - "$here/samples/config.sandbox.json" "$work/config.json" "$bootstrap" "$port" "$registry" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg.setdefault("kafka", {})["bootstrap.servers"] = sys.argv[3]
cfg.setdefault("klaviyo", {})["base_url"] = "http://127.0.0.1:%s" % sys.argv[4]
cfg["klaviyo"]["linger_ms"] = 50
cfg.setdefault("admin", {})["listen"] = ""
cfg.setdefault("log", {})["level"] = "warn"
cfg["registry"] = {"url": sys.argv[5]}
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
PY

echo "sandbox: producing samples/customers.jsonl and samples/orders.jsonl (+ one undecodable record)" >&2
python3 - "$here/samples" "$work" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
for name, key in (("customers", "customer_id"), ("orders", "order_id")):
    with open(f"{src}/{name}.jsonl") as f, open(f"{dst}/{name}.kv", "w") as out:
        for line in f:
            line = line.strip()
            if line:
                out.write(f"{json.loads(line)[key]}\t{line}\n")
    if name == "orders":
        with open(f"{dst}/{name}.kv", "a") as out:
            out.write("garbage-1\tthis is not an order\n")
PY
kcat -b "$bootstrap" -P -t pos.customers -K $'\t' -l "$work/customers.kv"
kcat -b "$bootstrap" -P -t pos.orders -K $'\t' -l "$work/orders.kv"
echo "sandbox: + 40 customers and 120 orders as Confluent Avro (tillstream-gen, schemas in the registry)" >&2
"$bin/tillstream-gen" --customers 40 --orders 120 --seed 7 --format avro --registry "$registry" \
    --kafka "$bootstrap" --topic-customers pos.customers --topic-orders pos.orders 2>"$work/gen.log" ||
  { cat "$work/gen.log" >&2; exit 1; }

# the poller's first full pass comes first: tillstream-customers waits for it
# (docs/consent.md, "First deployment over an existing Klaviyo account")
echo "sandbox: tillstream-suppressions --once (Klaviyo's suppressions into pos.klaviyo.suppressions)" >&2
"$bin/tillstream-suppressions" --config "$work/config.json" --once >"$work/suppressions.log" 2>&1 ||
  { cat "$work/suppressions.log" >&2; exit 1; }
echo "sandbox: running tillstream-customers and tillstream-orders until caught up" >&2
"$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/customers.log"
"$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/orders.log"

curl -fsS "http://127.0.0.1:$port/__sim/stats" >"$work/stats.json"
kcat -b "$bootstrap" -C -t pos.deadletter -e -q -f '%h\n' >"$work/dlq.headers" 2>/dev/null || true
python3 - "$work/stats.json" "$work/dlq.headers" <<'PY'
import json, sys, collections
stats = json.load(open(sys.argv[1]))
print("\nEvents accepted by Klaviyo (simulator), per account")
print("%-10s %8s %10s %10s %10s" % ("account", "events", "profiles", "subscribed", "duplicates"))
for name, a in sorted(stats.get("accounts", {}).items()):
    print("%-10s %8d %10d %10d %10d" % (name, a.get("events_recorded", 0), a.get("profiles", 0),
          a.get("subscribed", 0), a.get("duplicates_ignored", 0)))
    for metric, n in sorted(a.get("events_by_metric", {}).items()):
        print("  %-24s %6d" % (metric, n))
reasons = collections.Counter()
for line in open(sys.argv[2]):
    for kv in line.strip().split(","):
        k, _, v = kv.partition("=")
        if k == "tillstream.reason":
            reasons[v] += 1
print("\nDead-letter records by reason (topic pos.deadletter)")
for r, n in sorted(reasons.items()):
    print("  %-24s %6d" % (r, n))
print("  %-24s %6d" % ("total", sum(reasons.values())))
PY
