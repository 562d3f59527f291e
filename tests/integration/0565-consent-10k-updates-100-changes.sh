#!/usr/bin/env bash
# Consent by transition at volume: 1,000 customers opt in (1,000 subscribes),
# then 10,000 updates of them (10 each: addresses, loyalty points) of which
# 100 change consent (true -> false): the simulator counts exactly 100
# subscription changes and no subscribe at all. The second run is a new
# process: what was sent comes back from the state topic.
set -euo pipefail
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
sim="http://127.0.0.1:$sim_port"
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\"}}"
stats() { curl -fsS "$sim/__sim/stats" | python3 -c "
import json,sys; a=json.load(sys.stdin)['accounts']['brand-a']; print(a['subscribed'], a['unsubscribed'], a['profiles'])"; }
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
def rec(i, consent, t, points):
    return json.dumps({"customer_id": f"C{i:04d}", "email": f"c{i:04d}@example.com",
                       "home_outlet_id": "101", "email_consent": consent, "updated_at": t,
                       "billing_address": {"line1": f"{points} George St", "city": "Sydney"}})
t0 = 1790000000000
with open(w + "/first.kv", "w") as f:
    for i in range(1000): f.write(f"C{i:04d}\t{rec(i, True, t0, 0)}\n")
with open(w + "/updates.kv", "w") as f:
    for r in range(10):
        for i in range(1000):
            consent = not (i < 100 and r >= 5)  # customers 0..99 opt out at round 5
            f.write(f"C{i:04d}\t{rec(i, consent, t0 + (r + 1) * 60000, r + 1)}\n")
PY
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/first.kv"
timeout 120 "$bin/tillstream-customers" --config "$work/c.json" --exit-at-end >"$work/c1.log" 2>&1
read -r sub unsub _ <<<"$(stats)"
[ "$sub" = 1000 ] && [ "$unsub" = 0 ] || { echo "FAIL: first run: $sub subscribed, $unsub unsubscribed" >&2; exit 1; }
curl -fsS -X POST "$sim/__sim/reset" >/dev/null

kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/updates.kv"
timeout 300 "$bin/tillstream-customers" --config "$work/c.json" --exit-at-end >"$work/c2.log" 2>&1
grep -q '"consumed":10000' "$work/c2.log" || { echo "FAIL: second run did not consume 10000" >&2; tail -3 "$work/c2.log" >&2; exit 1; }
read -r sub unsub profiles <<<"$(stats)"
[ "$sub" = 0 ] && [ "$unsub" = 100 ] ||
  { echo "FAIL: 10,000 updates: $sub subscribed, $unsub unsubscribed; want 0 and 100" >&2; exit 1; }
[ "$profiles" = 1000 ] || { echo "FAIL: $profiles profiles updated, want 1000" >&2; exit 1; }
echo "consent: 10,000 updates, 100 consent changes -> exactly 100 subscription changes sent"
