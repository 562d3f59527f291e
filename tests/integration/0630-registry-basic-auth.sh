#!/usr/bin/env bash
# The schema registry with basic auth (the real registry of
# scripts/registry.sh, its users in its own store), on the real broker:
# - credentials refused (a wrong password from the env): the customers
#   consumer waits and says which config keys to check; nothing is
#   dead-lettered, the password appears in no log line;
# - the right credentials, the password from a file (registry.password_file,
#   trailing newline): every Avro record is delivered, exactly as the dry
#   run of the same records says.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
reg="$work/registry"
trap '"$src/scripts/registry.sh" destroy "$reg" >/dev/null 2>&1 || true; cleanup' EXIT
user=ts-reader pw="pw-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
url=$(TS_REGISTRY_USER=$user TS_REGISTRY_PASSWORD=$pw "$src/scripts/registry.sh" start "$reg" "$TS_KAFKA_BOOTSTRAP")
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/subjects")" = 401 ] # auth is really on
topics
start_sim
T_C="pos.customers.$sfx" T_O="pos.orders.$sfx"
id_c=$(register_schema "$url" "$T_C-value" "$src/schemas/customer.avsc" -u "$user:$pw")
id_o=$(register_schema "$url" "$T_O-value" "$src/schemas/order.avsc" -u "$user:$pw")
gen() { "$bin/tillstream-gen" --customers 15 --orders 30 --seed 21 "$@" 2>>"$work/gen.log"; }
gen --out-customers "$work/c.jsonl" --out-orders "$work/o.jsonl"
gen --format avro --schema-id-customers "$id_c" --schema-id-orders "$id_o" \
    --kafka "$TS_KAFKA_BOOTSTRAP" --topic-customers "$T_C" --topic-orders "$T_O"

# 1. refused: a wrong password
export TS_IT_REG_USER=$user TS_IT_REG_BAD=wrong-password
registry_refused bad \
  "{\"registry\": {\"url\": \"$url\", \"username_env\": \"TS_IT_REG_USER\", \"password_env\": \"TS_IT_REG_BAD\"},
    \"admin\": {\"listen\": \"127.0.0.1:0\"}}" 'refused our credentials' 'registry.username_env'

# 2. the right credentials, the password from a file
printf '%s\n' "$pw" >"$work/registry-password"
write_config "$work/config.json" \
  "{\"registry\": {\"url\": \"$url\", \"username_env\": \"TS_IT_REG_USER\", \"password_file\": \"$work/registry-password\"}}"
delivered_as_dry_run "$work/config.json" "$work/c.jsonl" "$work/o.jsonl"
echo "basic auth: $(cat "$work/delivered") events delivered with the password from a file"
! grep -q -- "$pw" "$work/bad.log" "$work/customers.log" "$work/orders.log" || { echo "the registry password leaked into a log" >&2; exit 1; }
