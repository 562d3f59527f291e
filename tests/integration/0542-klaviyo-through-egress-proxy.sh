#!/usr/bin/env bash
# Klaviyo through a corporate egress proxy, on the real broker: pods that may
# reach the internet only through an HTTP proxy set HTTPS_PROXY (and
# NO_PROXY for in-cluster services), as for any libcurl program
# (docs/operations.md, "Egress proxy"). Here https://127.0.0.1:<tls> stands in
# for https://a.klaviyo.com (a TLS front of the simulator with a private CA,
# klaviyo.ca_bundle) and tests/integration/egress.py is the proxy (CONNECT
# only, as egress proxies are for https).
# - With HTTPS_PROXY every Klaviyo request goes through a CONNECT tunnel to
#   the Klaviyo host, TLS inside it (the proxy never sees the API key in the
#   clear), verification on; Kafka is reached directly (librdkafka ignores
#   the variable); every event is delivered.
# - With the Klaviyo host in NO_PROXY the proxy sees nothing and the events
#   are delivered directly.
# - A proxy that refuses the tunnel is a retried transport error: nothing is
#   dead-lettered, and everything goes out once the proxy is fixed.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
"$src/scripts/registry.sh" tls "$work" >/dev/null
python3 "$src/tests/integration/egress.py" "$work" "$sim_port" "$work/tls/server.crt" "$work/tls/server.key" \
  2>"$work/egress.err" & pids+=($!)
wait_file "$work/tls.port"; wait_file "$work/proxy.port"
tls_port=$(cat "$work/tls.port") proxy_port=$(cat "$work/proxy.port")
write_config "$work/config.json" "{\"klaviyo\": {\"base_url\": \"https://127.0.0.1:$tls_port\",
  \"ca_bundle\": \"$work/tls/ca.crt\"}}"
orders_kv "$work/o1.kv" X 0 300 30    # 600 events
orders_kv "$work/o2.kv" X 300 300 30
orders_kv "$work/o3.kv" X 600 300 30
run() { # run LOG ENV...: tillstream-orders to the end of the topic, with ENV (and no other proxy setting)
  local lg=$1; shift
  env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u no_proxy -u NO_PROXY -u all_proxy -u ALL_PROXY \
    "$@" timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$lg" 2>&1
}
tunnels() { grep -c "^CONNECT 127.0.0.1:$tls_port " "$work/proxy.log" 2>/dev/null || true; }
expect() { [ "$2" = "$3" ] || { echo "FAIL: $1: $2, want $3" >&2; exit 1; }; }

# 1. through the proxy
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o1.kv"
run "$work/run1.log" HTTPS_PROXY="http://127.0.0.1:$proxy_port" ||
  { echo "FAIL: run through the proxy" >&2; tail -5 "$work/run1.log" >&2; exit 1; }
expect "events recorded through the proxy" "$(sim_counts all events_recorded)" 600
t1=$(tunnels)
[ "$t1" -ge 1 ] || { echo "FAIL: no CONNECT tunnel to the Klaviyo host in the proxy's log" >&2; cat "$work/proxy.log" >&2; exit 1; }
expect "tunnels carrying the API key in the clear" "$(awk '$1 == "CONNECT" && $5 != 0' "$work/proxy.log" | wc -l)" 0
expect "requests the proxy refused" "$(grep -c '^REFUSED' "$work/proxy.log" || true)" 0
expect "CONNECTs to anything but the Klaviyo host (Kafka included)" "$(grep '^CONNECT' "$work/proxy.log" | grep -vc " 127.0.0.1:$tls_port " || true)" 0

# 2. the Klaviyo host in NO_PROXY: straight there
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o2.kv"
run "$work/run2.log" HTTPS_PROXY="http://127.0.0.1:$proxy_port" NO_PROXY=127.0.0.1 ||
  { echo "FAIL: run with NO_PROXY" >&2; tail -5 "$work/run2.log" >&2; exit 1; }
expect "events recorded (NO_PROXY)" "$(sim_counts all events_recorded)" 1200
expect "tunnels with the host in NO_PROXY" "$(tunnels)" "$t1"

# 3. a proxy that refuses: retried, nothing dead-lettered; then fixed
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/o3.kv"
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rc=0; env -u no_proxy -u NO_PROXY HTTPS_PROXY="http://127.0.0.1:$dead_port" timeout 8 \
  "$bin/tillstream-orders" --config "$work/config.json" >"$work/run3.log" 2>&1 || rc=$?
expect "exit of the run stopped by timeout (still retrying)" "$rc" 124
grep -q 'request failed (' "$work/run3.log" || { echo "FAIL: no retried transport error with a dead proxy" >&2; tail -5 "$work/run3.log" >&2; exit 1; }
expect "events recorded while the proxy was down" "$(sim_counts all events_recorded)" 1200
expect "dead letters with the proxy down" "$(read_dlq | grep -c . || true)" 0
run "$work/run4.log" HTTPS_PROXY="http://127.0.0.1:$proxy_port" ||
  { echo "FAIL: run after the proxy was fixed" >&2; tail -5 "$work/run4.log" >&2; exit 1; }
expect "events recorded after the proxy was fixed" "$(sim_counts all events_recorded)" 1800
if grep -q 'pk_it_' "$work"/run*.log; then echo "FAIL: an API key in a log" >&2; exit 1; fi
echo "Klaviyo through an egress proxy: $(tunnels) CONNECT tunnels to the Klaviyo host, TLS inside (no key in the clear), Kafka direct; NO_PROXY bypasses it; a dead proxy is retried (0 dead letters), then all 1800 events delivered once"
