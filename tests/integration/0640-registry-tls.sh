#!/usr/bin/env bash
# The schema registry over TLS (the real registry of scripts/registry.sh,
# https with a private CA), on the real broker. Verification is always on:
# - without registry.ca_bundle the private CA is not trusted: the consumer
#   waits and says why, naming registry.ca_bundle; nothing is dead-lettered;
# - with the CA but a host name the certificate does not name (localhost
#   for a 127.0.0.1 certificate): the same, never a silent fallback;
# - with the CA and the right name: every Avro record is delivered, exactly
#   as the dry run of the same records says.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
reg="$work/registry"
trap '"$src/scripts/registry.sh" destroy "$reg" >/dev/null 2>&1 || true; cleanup' EXIT
url=$(TS_REGISTRY_TLS=1 "$src/scripts/registry.sh" start "$reg" "$TS_KAFKA_BOOTSTRAP")
ca="$reg/tls/ca.crt"
case "$url" in https://127.0.0.1:*) ;; *) echo "not a TLS registry: $url" >&2; exit 1 ;; esac
! curl -fsS -o /dev/null "$url/subjects" 2>/dev/null || { echo "the private CA is trusted by default?" >&2; exit 1; }
topics
start_sim
T_C="pos.customers.$sfx" T_O="pos.orders.$sfx"
id_c=$(register_schema "$url" "$T_C-value" "$src/schemas/customer.avsc" --cacert "$ca")
id_o=$(register_schema "$url" "$T_O-value" "$src/schemas/order.avsc" --cacert "$ca")
gen() { "$bin/tillstream-gen" --customers 15 --orders 30 --seed 23 "$@" 2>>"$work/gen.log"; }
gen --out-customers "$work/c.jsonl" --out-orders "$work/o.jsonl"
gen --format avro --schema-id-customers "$id_c" --schema-id-orders "$id_o" \
    --kafka "$TS_KAFKA_BOOTSTRAP" --topic-customers "$T_C" --topic-orders "$T_O"

# refused: the consumer waits, says why and which key to set, counts it
registry_refused no-ca "{\"registry\": {\"url\": \"$url\"}, \"admin\": {\"listen\": \"127.0.0.1:0\"}}" \
  'certificate' 'registry.ca_bundle'
registry_refused wrong-host \
  "{\"registry\": {\"url\": \"${url/127.0.0.1/localhost}\", \"ca_bundle\": \"$ca\"}, \"admin\": {\"listen\": \"127.0.0.1:0\"}}" \
  'host name' 'registry.ca_bundle'

# trusted: the CA from the config, the name the certificate carries
write_config "$work/config.json" "{\"registry\": {\"url\": \"$url\", \"ca_bundle\": \"$ca\"}}"
delivered_as_dry_run "$work/config.json" "$work/c.jsonl" "$work/o.jsonl"
echo "registry TLS: untrusted CA and wrong host name waited; $(cat "$work/delivered") events delivered with registry.ca_bundle"
