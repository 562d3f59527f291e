#!/usr/bin/env bash
# The admin listener of a running tillstream-orders: /healthz live, /readyz
# ready once assigned and the customer table is restored, /metrics passes
# `promtool check metrics` (Debian's prometheus package) and its figures
# agree with what the simulator received and the dead-letter topic holds.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
command -v promtool >/dev/null || { echo "promtool missing (scripts/setup.sh installs prometheus)" >&2; exit 1; }
topics
start_sim
write_config "$work/config.json" '{"admin": {"listen": "127.0.0.1:0"}}'
produce_samples
timeout 60 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >/dev/null
"$bin/tillstream-orders" --config "$work/config.json" >"$work/orders.log" 2>&1 & pid=$!; pids+=($pid)
for _ in $(seq 1 200); do grep -q '"port":' "$work/orders.log" && break; sleep 0.05; done
port=$(grep -o '"port":[0-9]*' "$work/orders.log" | head -n 1 | cut -d: -f2)
[ -n "$port" ] || { cat "$work/orders.log" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/healthz")" = 200 ]
for _ in $(seq 1 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/readyz")" = 200 ] && break; sleep 0.05; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/readyz")" = 200 ]
# wait until every event is in (the unknown customer's dead letter comes last)
for _ in $(seq 1 300); do
  curl -s "127.0.0.1:$port/metrics" | grep -c 'tillstream_dead_letter_total{topic="pos.orders.'"$sfx"'",reason="UNKNOWN_CUSTOMER"} 1' >/dev/null && break
  sleep 0.05
done
curl -fsS "127.0.0.1:$port/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt"
curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" >"$work/stats.json"
python3 - "$work" <<'PY'
import json, re, sys
w = sys.argv[1]
text = open(w + "/metrics.txt").read()
stats = json.load(open(w + "/stats.json"))["accounts"]
def total(name, **labels):
    s = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                s += float(line.rsplit(" ", 1)[1])
    return s
for acct, st in stats.items():
    assert total("tillstream_events_accepted_total", account=acct) == st["events_recorded"], acct
assert total("tillstream_records_consumed_total") == 60
assert total("tillstream_dead_letter_total") == 6, total("tillstream_dead_letter_total")  # the orders sample: 3 NO_PROFILE_IDENTIFIER, 2 UNMAPPED_OUTLET, 1 UNKNOWN_CUSTOMER
assert total("tillstream_customer_table_customers") in (0, 30)  # refreshed every 5 s
assert total("tillstream_ready") == 1
assert "tillstream_klaviyo_request_duration_seconds_bucket" in text
assert total("tillstream_klaviyo_requests_total", status_class="2xx") >= 3
assert "pk_it_" not in text, "an API key in /metrics"
print("metrics: promtool clean, figures agree with the simulator")
PY
kill -TERM "$pid"; wait "$pid"
