#!/usr/bin/env bash
# tillstream-suppressions within Get Profiles' budget and through faults:
# the simulator admits 2 Get Profiles a second (Klaviyo's is 75/s) and fails
# a fifth of all requests with 500/503 (seeded). With page_size 1 the 12
# suppressions are 12 pages: the poller meets 429s, waits out each
# Retry-After (so it draws at most about one 429 a second, never a storm),
# retries the 5xx, and `--once` still produces every suppression exactly
# once and exits 0. Then 12 more, and a poller SIGKILLed in the middle of its
# pass (some of them out, some not): the restart produces the rest, none twice
# (a page's records and its watermark are one transaction).
set -euo pipefail
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim --limit get_profiles=2/s,600/m --fail-rate 0.2 --seed 7
sim="http://127.0.0.1:$sim_port"
supp="pos.klaviyo.suppressions.$sfx"
write_config "$work/c.json" "{\"topics\":{\"customers_state\":\"tillstream.customers.state.$sfx\",
  \"suppressions\":\"$supp\",\"suppressions_state\":\"tillstream.suppressions.state.$sfx\"},
  \"suppressions\":{\"page_size\":1,\"transactional_id\":\"it-supp-$sfx\"}}"
t0=$(python3 -c 'import time; print(int(time.time()*1000) - 600000)')
for i in $(seq 1 12); do
  curl -fsS -X POST "$sim/__sim/accounts/brand-a/suppress" \
    -d "{\"email\":\"t$i@example.com\",\"external_id\":\"T$i\",\"reason\":\"UNSUBSCRIBE\",\"timestamp\":$((t0 + i * 1000))}" >/dev/null
done
start=$(date +%s)
"$bin/tillstream-suppressions" --config "$work/c.json" --once >"$work/run.log" 2>&1 ||
  { echo "FAIL: --once under throttling and faults" >&2; tail -20 "$work/run.log" >&2; exit 1; }
secs=$(( $(date +%s) - start ))
keys=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "$supp" -e -q -f '%k\n' | sort)
[ "$(echo "$keys" | wc -l)" = 12 ] && [ "$(echo "$keys" | uniq | wc -l)" = 12 ] ||
  { echo "FAIL: want 12 distinct suppressions, got: $keys" >&2; exit 1; }
stats=$(curl -fsS "$sim/__sim/stats")
read -r thr fx < <(echo "$stats" | python3 -c "import json,sys; a=json.load(sys.stdin)['accounts']['brand-a']; print(a['throttled'], a['requests']['5xx'])")
[ "$thr" -ge 1 ] || { echo "FAIL: the simulator's limit never answered 429 (test not throttled)" >&2; exit 1; }
[ "$fx" -ge 1 ] || { echo "FAIL: no injected 5xx (test has no faults)" >&2; exit 1; }
[ "$thr" -le $((secs + 3)) ] || { echo "FAIL: $thr 429s in $secs s: Retry-After not waited out" >&2; exit 1; }
# a SIGKILL in the middle of a pass
for i in $(seq 13 24); do
  curl -fsS -X POST "$sim/__sim/accounts/brand-a/suppress" \
    -d "{\"email\":\"t$i@example.com\",\"external_id\":\"T$i\",\"reason\":\"SPAM_REPORT\",\"timestamp\":$((t0 + i * 1000))}" >/dev/null
done
count() { kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "$supp" -e -q -f '%k\n' | grep -c . || true; }
"$bin/tillstream-suppressions" --config "$work/c.json" >"$work/loop.log" 2>&1 &
lpid=$!; pids+=($lpid)
for _ in $(seq 1 300); do [ "$(count)" -ge 16 ] && break; sleep 0.05; done
kill -KILL "$lpid"; wait "$lpid" 2>/dev/null || true
mid=$(count)
[ "$mid" -ge 16 ] && [ "$mid" -lt 24 ] || { echo "FAIL: the kill was not mid-pass ($mid records)" >&2; exit 1; }
"$bin/tillstream-suppressions" --config "$work/c.json" --once >"$work/run2.log" 2>&1 ||
  { echo "FAIL: --once after the SIGKILL" >&2; tail -20 "$work/run2.log" >&2; exit 1; }
keys=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "$supp" -e -q -f '%k\n' | sort)
[ "$(echo "$keys" | wc -l)" = 24 ] && [ "$(echo "$keys" | uniq | wc -l)" = 24 ] ||
  { echo "FAIL: want 24 distinct suppressions after the kill at $mid, got: $(echo "$keys" | uniq -c | awk '$1 > 1')" >&2; exit 1; }
echo "0582: 12 suppressions once each through $thr 429s and $fx 5xx in ${secs}s; 24 once each across a SIGKILL after $mid"
