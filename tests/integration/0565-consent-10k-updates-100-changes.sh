#!/usr/bin/env bash
# Consent by transition at volume: 1,000 customers opt in (1,000 subscribes),
# then 10,000 updates of them (10 each: addresses, loyalty points) of which
# 100 change consent (true -> false): the simulator counts exactly 100
# subscription changes and no subscribe at all. The second run is a new
# process: what was sent comes back from the state topic.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\"}}"
stats() { sim_counts brand-a subscribed unsubscribed profiles; }
consent_kv "$work/first.kv" 0-1 0-0 Sydney     # round 0: everyone opts in
consent_kv "$work/updates.kv" 1-11 6-11 Sydney # rounds 1..10: C0000..C0099 opt out at round 6
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
