#!/usr/bin/env bash
# --check-config on every binary that takes --config (issue 18, item 6):
# exit 0 and "ok" on a valid config; exit 2 with exactly the message a real
# start prints for an unresolvable API key, an invalid librdkafka property,
# an unreadable raw writer schema and an admin address in use (now with the
# errno text). It connects nowhere: the bootstrap servers here do not exist.
# The dead-letter tool needs no API keys and serves no admin listener.
set -euo pipefail
bin=$TS_BIN_DIR
dir=$(mktemp -d); holder=
trap '[ -n "$holder" ] && kill "$holder" 2>/dev/null; rm -rf "$dir"' EXIT
cfg() {   # cfg FILE [python statements on c]
  python3 - "$TS_SOURCE_DIR/samples/config.sandbox.json" "$1" "${2:-pass}" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["kafka"] = {"bootstrap.servers": "127.0.0.1:1"}   # nothing listens there: nothing may connect
c["admin"] = {"listen": "127.0.0.1:0"}
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"))
PY
}
export KLAVIYO_KEY_BRAND_A=pk_check_secret_a KLAVIYO_KEY_BRAND_B=pk_check_secret_b KLAVIYO_KEY_BRAND_C=pk_check_secret_c
cfg "$dir/ok.json"
for b in tillstream-customers tillstream-orders; do
  timeout 20 "$bin/$b" --config "$dir/ok.json" --check-config >"$dir/out" 2>"$dir/err" \
    || { echo "$b --check-config failed on a valid config:" >&2; cat "$dir/err" >&2; exit 1; }
  grep -qx "$b: config $dir/ok.json: ok" "$dir/out"
done
timeout 20 "$bin/tillstream-dlq" --check-config --config "$dir/ok.json" | grep -qx "tillstream-dlq: config $dir/ok.json: ok"
timeout 20 "$bin/tillstream-dlq" stats --config "$dir/ok.json" --check-config | grep -qx "tillstream-dlq: config $dir/ok.json: ok"

same_as_start() {   # same_as_start BINARY CONFIG PATTERN: check and start both exit 2 with one message
  local b=$1 c=$2 pat=$3 rc=0
  timeout 20 "$bin/$b" --config "$c" --check-config >/dev/null 2>"$dir/check.err" || rc=$?
  [ "$rc" = 2 ] || { echo "$b --check-config on $c: exit $rc" >&2; cat "$dir/check.err" >&2; exit 1; }
  grep -q -- "$pat" "$dir/check.err" || { echo "$b --check-config: expected '$pat':" >&2; cat "$dir/check.err" >&2; exit 1; }
  rc=0; timeout 30 "$bin/$b" --config "$c" >/dev/null 2>"$dir/start.err" || rc=$?
  [ "$rc" = 2 ] || { echo "$b start on $c: exit $rc" >&2; exit 1; }
  diff "$dir/check.err" "$dir/start.err" >&2 || { echo "$b: --check-config and start disagree" >&2; exit 1; }
  if grep -q pk_check_secret "$dir/check.err"; then echo "an API key in a message" >&2; exit 1; fi
}
unset KLAVIYO_KEY_BRAND_B
for b in tillstream-customers tillstream-orders; do
  same_as_start "$b" "$dir/ok.json" 'api_key_env: environment variable KLAVIYO_KEY_BRAND_B is not set'
done
# the dead-letter tool reads no key
timeout 20 "$bin/tillstream-dlq" --check-config --config "$dir/ok.json" >/dev/null
export KLAVIYO_KEY_BRAND_B=pk_check_secret_b
cfg "$dir/prop.json" 'c["kafka"]["fetch.wait.max.msx"] = "5"'
for b in tillstream-customers tillstream-orders; do
  same_as_start "$b" "$dir/prop.json" 'kafka.fetch.wait.max.msx: No such configuration property'
done
rc=0; "$bin/tillstream-dlq" --check-config --config "$dir/prop.json" 2>"$dir/err" || rc=$?
[ "$rc" = 2 ] && grep -q 'tillstream-dlq: kafka.fetch.wait.max.msx: No such configuration property' "$dir/err"
cfg "$dir/val.json" 'c["kafka"]["security.protocol"] = "carrier-pigeon"'
same_as_start tillstream-orders "$dir/val.json" 'kafka.security.protocol: Invalid value "carrier-pigeon"'
cfg "$dir/raw.json" 'c["registry"] = {"raw_writer_schema_orders": "/nonexistent/order.avsc"}'
same_as_start tillstream-orders "$dir/raw.json" 'registry.raw_writer_schema_orders'
# the customers consumer does not read the orders schema; the orders one reads both
cfg "$dir/rawc.json" 'c["registry"] = {"raw_writer_schema_customers": "/nonexistent/customer.avsc"}'
same_as_start tillstream-orders "$dir/rawc.json" 'registry.raw_writer_schema_customers'
# an admin address taken by another process (a replay beside a live consumer)
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(120)' "$dir/held.port" & holder=$!
for _ in $(seq 100); do [ -s "$dir/held.port" ] && break; sleep 0.05; done
port=$(cat "$dir/held.port")
cfg "$dir/admin.json" "c['admin'] = {'listen': '127.0.0.1:$port'}"
for b in tillstream-customers tillstream-orders; do
  same_as_start "$b" "$dir/admin.json" "admin.listen: cannot listen on 127.0.0.1:$port: Address already in use"
done
# config errors are the loader's, as before
echo '{"kafka": {}, "accounts": []}' >"$dir/bad.json"
for b in tillstream-customers tillstream-orders; do
  rc=0; "$bin/$b" --config "$dir/bad.json" --check-config 2>/dev/null || rc=$?; [ "$rc" = 2 ]
done
echo "--check-config: ok on valid configs; keys, librdkafka properties, schemas, admin address fail as a start does"
