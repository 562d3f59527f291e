#!/usr/bin/env bash
# ctest: cost 65 (seconds, about: long tests start first)
# The Grafana dashboard (issue 18, item 4): rendered as a ConfigMap labelled
# grafana_dashboard when enabled (and not otherwise); the JSON parses, has the
# panels the issue asks for, every query is valid PromQL (promtool check rules
# over them as recording rules) and names only metrics that a live /metrics
# scrape of running consumers exposes, or the few that other modules add
# (listed below). The consumers run the samples on librdkafka's mock cluster
# against the Klaviyo simulator, so accepted events, dead letters and request
# histograms are all in the scrape.
set -euo pipefail
export PATH="${TS_CACHE:-$HOME/.cache/tillstream}/bin:$PATH"
command -v helm >/dev/null || { echo "helm missing (scripts/helm.sh installs it)" >&2; exit 1; }
command -v promtool >/dev/null || { echo "promtool missing (scripts/setup.sh installs prometheus)" >&2; exit 1; }
py=${TS_CACHE:-$HOME/.cache/tillstream}/venv/bin/python
bin=$TS_BIN_DIR src=$TS_SOURCE_DIR
dir=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
chart=$src/helm/tillstream
helm template rel "$chart" -f "$src/tests/ops/values/minimal.yaml" >"$dir/off.yaml"
helm template rel "$chart" -f "$src/tests/ops/values/minimal.yaml" --set grafanaDashboard.enabled=true \
  --set grafanaDashboard.annotations.grafana_folder=POS >"$dir/on.yaml"

# a live scrape: both consumers over the samples
wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "timeout waiting for $1" >&2; return 1; }
"$bin/tillstream-sandbox-kafka" --topic pos.customers:1 --topic pos.orders:1 --topic pos.deadletter:1 \
    --topic tillstream.customers.state:1 --topic pos.klaviyo.suppressions:1 --topic tillstream.suppressions.state:1 \
  --bootstrap-file "$dir/bootstrap" >/dev/null 2>&1 & pids+=($!)
wait_file "$dir/bootstrap"
bs=$(cat "$dir/bootstrap")
export KLAVIYO_KEY_BRAND_A=pk_dash_a KLAVIYO_KEY_BRAND_B=pk_dash_b KLAVIYO_KEY_BRAND_C=pk_dash_c
"$bin/tillstream-klaviyo-sim" --port-file "$dir/sim.port" --account brand-a=KLAVIYO_KEY_BRAND_A \
  --account brand-b=KLAVIYO_KEY_BRAND_B --account brand-c=KLAVIYO_KEY_BRAND_C >/dev/null 2>&1 & pids+=($!)
wait_file "$dir/sim.port"
python3 - "$src" "$dir" "$bs" "$(cat "$dir/sim.port")" <<'PY'
import json, sys
src, d, bs, port = sys.argv[1:]
c = json.load(open(f"{src}/samples/config.sandbox.json"))
c["kafka"] = {"bootstrap.servers": bs}
c["klaviyo"]["base_url"] = f"http://127.0.0.1:{port}"
c["klaviyo"]["linger_ms"] = 50
c.setdefault("consumer", {})["unknown_customer_retry_ms"] = 1000
c["admin"] = {"listen": "127.0.0.1:0"}
json.dump(c, open(f"{d}/config.json", "w"))
for name, key in (("customers", "customer_id"), ("orders", "order_id")):
    with open(f"{d}/{name}.kv", "w") as out:
        for line in open(f"{src}/samples/{name}.jsonl"):
            if line.strip(): out.write(f"{json.loads(line)[key]}\t{line.strip()}\n")
PY
kcat -b "$bs" -P -t pos.customers -K $'\t' -l "$dir/customers.kv"
kcat -b "$bs" -P -t pos.orders -K $'\t' -l "$dir/orders.kv"
# the poller's first full pass first: tillstream-customers waits for it
TILLSTREAM_BOOTSTRAP_SERVERS=$bs timeout 60 "$bin/tillstream-suppressions" --config "$dir/config.json" --once \
  >"$dir/suppressions.log" 2>&1 || { cat "$dir/suppressions.log" >&2; exit 1; }
TILLSTREAM_BOOTSTRAP_SERVERS=$bs timeout 60 "$bin/tillstream-customers" --config "$dir/config.json" --exit-at-end >"$dir/customers.log" 2>&1 \
  || { cat "$dir/customers.log" >&2; exit 1; }
"$bin/tillstream-orders" --config "$dir/config.json" >"$dir/orders.log" 2>&1 & pids+=($!)
for _ in $(seq 1 200); do grep -q '"port":' "$dir/orders.log" && break; sleep 0.05; done
port=$(grep -o '"port":[0-9]*' "$dir/orders.log" | head -n 1 | cut -d: -f2)
[ -n "$port" ] || { cat "$dir/orders.log" >&2; exit 1; }
for _ in $(seq 1 300); do   # until the events and the dead letters are in
  curl -s "127.0.0.1:$port/metrics" >"$dir/metrics.txt" || true
  grep -q '^tillstream_dead_letter_total{' "$dir/metrics.txt" && grep -q '^tillstream_events_accepted_total{' "$dir/metrics.txt" && break
  sleep 0.1
done
grep -q '^tillstream_dead_letter_total{' "$dir/metrics.txt" || { echo "no dead letters in the scrape" >&2; cat "$dir/orders.log" >&2; exit 1; }
# the live scrape itself: valid exposition, with build_info, process_* and canonical buckets
promtool check metrics <"$dir/metrics.txt"
grep -q '^tillstream_build_info{version="' "$dir/metrics.txt" && grep -q '^process_open_fds ' "$dir/metrics.txt"
grep -q 'tillstream_klaviyo_request_duration_seconds_bucket{.*le="0.005"}' "$dir/metrics.txt"

"$py" - "$dir" "$src" <<'PY'
import json, re, sys, yaml
d, src = sys.argv[1], sys.argv[2]
def docs(n): return [x for x in yaml.safe_load_all(open(f"{d}/{n}.yaml")) if x]
assert not [x for x in docs("off") if x["metadata"]["name"].endswith("-dashboard")], "dashboard off by default"
cm, = [x for x in docs("on") if x["kind"] == "ConfigMap" and x["metadata"]["name"] == "rel-tillstream-dashboard"]
assert cm["metadata"]["labels"]["grafana_dashboard"] == "1", cm["metadata"]
assert cm["metadata"]["annotations"] == {"grafana_folder": "POS"}
dash = json.loads(cm["data"]["tillstream.json"])
assert dash == json.load(open(f"{src}/helm/tillstream/dashboards/tillstream.json"))
titles = [p["title"] for p in dash["panels"]]
for want in ("Events accepted per account vs ceiling", "Consumer lag (committed offsets)", "Dead letters by reason",
             "429s per account", "Klaviyo request latency"):
    assert want in titles, (want, titles)
assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
exprs += [re.match(r"label_values\((.*), *\w+\)$", v["query"]["query"]).group(1)
          for v in dash["templating"]["list"] if v["type"] == "query"]
def concrete(e):   # Grafana's variables as Prometheus would receive them
    return e.replace("$__rate_interval", "5m").replace("$namespace", ".*").replace("$job", ".*").replace("$account", ".*")
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": concrete(e)}
                                                           for i, e in enumerate(exprs)]}]}, open(f"{d}/queries.yaml", "w"))
scrape = {l.split("{")[0].split(" ")[0] for l in open(f"{d}/metrics.txt") if l.strip() and not l.startswith("#")}
# metrics other engineers add in the same change (issue 18, items 1 and 3)
new = {"tillstream_klaviyo_last_success_timestamp_seconds", "tillstream_oldest_undelivered_age_seconds",
       "tillstream_dead_letters_by_account_total", "tillstream_customer_table_ready",
       "tillstream_consumer_lag_records"}   # now from committed offsets, per owned partition
kw = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}
used = set()
for e in exprs:
    x = re.sub(r'"[^"]*"', "", concrete(e))
    x = re.sub(r"\{[^}]*\}", "", x)
    x = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", x)
    x = re.sub(r"\[[^\]]*\]", "", x)
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?", x):
        tok = m.group(0).rstrip("( ")
        if m.group(1) or tok in kw or re.fullmatch(r"[0-9.e]+", tok): continue
        used.add(tok)
missing = used - scrape - new
assert not missing, f"dashboard queries name metrics no consumer exposes: {sorted(missing)}"
assert {"tillstream_events_accepted_total", "tillstream_klaviyo_request_duration_seconds_bucket",
        "tillstream_dead_letter_total", "process_cpu_seconds_total", "tillstream_build_info"} <= used & scrape
print(f"dashboard: {len(dash['panels'])} panels, {len(exprs)} queries over {len(used)} metrics "
      f"({len(used & new)} from the new list, the rest in the live scrape)")
PY
promtool check rules "$dir/queries.yaml" >/dev/null
echo "grafana dashboard: ConfigMap, panels, every query valid PromQL over exposed metrics"
