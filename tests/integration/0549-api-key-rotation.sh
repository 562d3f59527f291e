#!/usr/bin/env bash
# An API key rotated without a restart, on the real broker. brand-a's key is
# in a file laid out as the kubelet lays out a mounted Secret (keys/brand-a ->
# ..data/brand-a, ..data -> a timestamped directory, swapped atomically on an
# update); brand-b and brand-c keep env keys. tillstream-orders is live.
# 1. Klaviyo revokes brand-a's key before the Secret is updated: brand-a's
#    requests are refused (401), retried with backoff, never dead-lettered,
#    and the other accounts keep delivering. When the Secret is updated, the
#    consumer takes the new key (read again after a 401) and delivers what
#    waited; the process is never restarted.
# 2. The Secret is updated first (the usual order: new key, then revoke the
#    old one): the periodic look (klaviyo.key_check_ms) takes the new key,
#    and after the revocation no request is refused at all.
# 3. tillstream-suppressions (looping): after a revoke, a pass of brand-a fails
#    with 401 while the Secret has the old key; once it has the new one the
#    next pass reads the file again after its 401 and completes.
# Every event arrives once; no key appears in a log.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim --seed 9
keys="$work/keys"
secret_update() { # secret_update KEY: the kubelet's atomic update of the mounted Secret
  local d="$keys/..$(date +%s%N)"
  mkdir -p "$d"
  printf '%s\n' "$1" >"$d/brand-a"
  ln -s "$(basename "$d")" "$keys/..data_tmp"
  mv -T "$keys/..data_tmp" "$keys/..data"
}
mkdir -p "$keys"
secret_update "$KLAVIYO_KEY_BRAND_A"
ln -s ..data/brand-a "$keys/brand-a"
write_config "$work/config.json" "{\"klaviyo\": {\"key_check_ms\": 500}, \"admin\": {\"listen\": \"127.0.0.1:0\"},
  \"suppressions\": {\"interval_ms\": 1000, \"transactional_id\": \"it-supp-$sfx\"}}"
python3 - "$work/config.json" "$keys/brand-a" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
a = next(a for a in c["accounts"] if a["name"] == "brand-a")
del a["api_key_env"]
a["api_key_file"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
orders_kv "$work/o1.kv" R 0 900 60      # 1,800 events, 600 per account
orders_kv "$work/o2.kv" R 900 900 60
orders_kv "$work/o3.kv" R 1800 900 60
recorded() { sim_counts "$1" events_recorded; }
log_has() { grep -c "$1" "$work/orders.log" || true; }
refused() { curl -fsS "http://127.0.0.1:$port/metrics" |
  awk '/^tillstream_klaviyo_requests_total\{account="brand-a",.*status_class="4xx"/ {s += $NF} END {print s + 0}'; }
sim_key() { curl -fsS -X POST "$sim/__sim/keys" --data "{\"account\": \"brand-a\", \"key\": \"$1\"}" >/dev/null; }
wait_log="$work/orders.log"

kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o1.kv"
start_live tillstream-orders "$work/orders.log"
m() { metric "$port" "$1"; }
wait_for 60 "the first 1,800 events" '[ "$(sim_counts all events_recorded)" -ge 1800 ]'

# 1. revoked before the Secret is updated
sim_key pk_it_a_rotated_1
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o2.kv"
wait_for 30 "brand-a's key refused" '[ "$(log_has "refused the account.s API key (HTTP 401)")" -gt 0 ]'
wait_for 60 "brand-b and brand-c delivering meanwhile" \
  '[ "$(recorded brand-b)" -ge 1200 ] && [ "$(recorded brand-c)" -ge 1200 ]'
[ "$(recorded brand-a)" = 600 ] || { echo "brand-a recorded $(recorded brand-a) events with a revoked key" >&2; exit 1; }
[ "$(m tillstream_dead_letter_total)" = 0 ] || { echo "dead letters while brand-a's key was refused" >&2; exit 1; }
[ "$(m tillstream_klaviyo_api_key_reloads_total)" = 0 ] || { echo "a key reload before the Secret changed" >&2; exit 1; }
secret_update pk_it_a_rotated_1
wait_for 30 "the new key taken" '[ "$(log_has "API key changed in its file")" = 1 ]'
wait_for 60 "brand-a's waiting events" '[ "$(recorded brand-a)" -ge 1200 ]'
kill -0 "$c" || { echo "the consumer exited" >&2; exit 1; }
refused1=$(refused)
[ "$refused1" -gt 0 ] || { echo "no 401 counted for brand-a" >&2; exit 1; }

# 2. the Secret first, then the revocation: no request refused
secret_update pk_it_a_rotated_2
wait_for 30 "the second key taken by the periodic look" '[ "$(log_has "API key changed in its file")" = 2 ]'
sim_key pk_it_a_rotated_2
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o3.kv"
wait_for 60 "all 5,400 events" '[ "$(sim_counts all events_recorded)" -ge 5400 ]'
wait_for 30 "nothing in flight" '[ "$(m tillstream_inflight_records)" = 0 ]'
[ "$(refused)" = "$refused1" ] || { echo "brand-a refused $(( $(refused) - refused1 )) times after a rotation the consumer had already taken" >&2; exit 1; }
read -r got dups <<<"$(sim_counts all events_recorded duplicates_ignored)"
[ "$got" = 5400 ] || { echo "Klaviyo recorded $got of 5400 events" >&2; exit 1; }
[ "$(m tillstream_klaviyo_api_key_reloads_total)" = 2 ] || { echo "key reloads: $(m tillstream_klaviyo_api_key_reloads_total), want 2" >&2; exit 1; }
[ "$(m tillstream_dead_letter_total)" = 0 ] && [ -z "$(read_dlq)" ] || { echo "dead letters: $(m tillstream_dead_letter_total)" >&2; exit 1; }
if grep -q 'pk_it_' "$work/orders.log"; then echo "an API key in the log" >&2; exit 1; fi
kill -TERM "$c"; wait "$c"

# 3. the suppressions poller
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.klaviyo.suppressions.$sfx" 1
"$bin/tillstream-suppressions" --config "$work/config.json" >"$work/supp.log" 2>&1 & sp=$!; pids+=($sp)
passes() { grep -c '"account":"brand-a".*"channel":"email","pages"' "$work/supp.log" || true; }
wait_log="$work/supp.log"
wait_for 30 "a first pass of brand-a" '[ "$(passes)" -ge 1 ]'
sim_key pk_it_a_rotated_3
wait_for 30 "the poller's 401" 'grep -q "HTTP 401" "$work/supp.log"'
p0=$(passes)
secret_update pk_it_a_rotated_3
wait_for 30 "the poller taking the new key" 'grep -q "API key changed in its file" "$work/supp.log"'
wait_for 30 "a pass of brand-a with the new key" '[ "$(passes)" -gt "$p0" ]'
kill -TERM "$sp"; wait "$sp" || true
if grep -q 'pk_it_' "$work/supp.log"; then echo "an API key in the poller's log" >&2; exit 1; fi
echo "API key rotated twice without a restart: revoked first ($refused1 requests refused with 401, retried, 0 dead letters, the other accounts unaffected, the new key taken without a restart), then updated first (taken by the periodic look, 0 refused); 5400 of 5400 events once ($dups re-sends de-duplicated); the suppressions poller took a third key after its 401"
