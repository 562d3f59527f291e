#!/usr/bin/env bash
# Replicas: two customers consumers in one group, with rebalances while
# they work (the second member joins mid-stream, then the first leaves on
# SIGTERM), never both send the same consent change. 1,000 customers opt
# in; then 10,000 updates in which 100 customers opt out (round 5) and
# back in (round 8): exactly 100 unsubscribes and 100 subscribes reach
# the simulator. A third run of the group (--exit-at-end) finishes
# whatever the members left, from the restored state.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim --limit profiles_bulk=2/s,40/m --latency-ms 100  # records stay in flight across rebalances
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\"}}"
stats() { sim_counts brand-a subscribed unsubscribed; }
# round 0: everyone opts in; rounds 1..10 in two halves: C0000..C0099 opt out in rounds 6..8
consent_kv "$work/first.kv" 0-1 0-0
consent_kv "$work/updates0.kv" 1-6 6-9; consent_kv "$work/updates1.kv" 6-11 6-9
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/first.kv"
timeout 120 "$bin/tillstream-customers" --config "$work/c.json" --exit-at-end >"$work/c0.log" 2>&1
read -r sub unsub <<<"$(stats)"
[ "$sub" = 1000 ] || { echo "FAIL: first run: $sub subscribed" >&2; exit 1; }
curl -fsS -X POST "$sim/__sim/reset" >/dev/null

"$bin/tillstream-customers" --config "$work/c.json" >"$work/a.log" 2>&1 & a=$!; pids+=($a)
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/updates0.kv"
for _ in $(seq 1 100); do grep -q '"assigned 3 partition' "$work/a.log" && break; sleep 0.1; done
"$bin/tillstream-customers" --config "$work/c.json" >"$work/b.log" 2>&1 & b=$!; pids+=($b)
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/updates1.kv"
# the second member takes partitions (a rebalance while records flow)
for _ in $(seq 1 300); do grep -q 'assigned [12] partition' "$work/b.log" && break; sleep 0.1; done
grep -q 'assigned [12] partition' "$work/b.log" || { echo "FAIL: no rebalance to the second member" >&2; exit 1; }
kill -TERM "$a"; wait "$a"   # and the first leaves: its partitions move to the second
for _ in $(seq 1 300); do [ "$(grep -c 'assigned 3 partition' "$work/b.log")" -ge 1 ] && break; sleep 0.1; done
sleep 2
kill -TERM "$b"; wait "$b"
timeout 120 "$bin/tillstream-customers" --config "$work/c.json" --exit-at-end >"$work/c3.log" 2>&1
read -r sub unsub <<<"$(stats)"
[ "$sub" = 100 ] && [ "$unsub" = 100 ] ||
  { echo "FAIL: replicas: $sub subscribed, $unsub unsubscribed; want 100 and 100" >&2
    grep -h 'assigned\|revoked\|restored' "$work"/[abc]*.log | cut -c1-200 >&2; exit 1; }
echo "consent: two members and three rebalances, 200 consent changes sent once each"
