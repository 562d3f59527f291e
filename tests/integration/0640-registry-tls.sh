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
register() { # register SUBJECT AVSC -> id
  python3 -c 'import json,sys; print(json.dumps({"schema": open(sys.argv[1]).read()}))' "$2" |
    curl -fsS --cacert "$ca" -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
      --data @- "$url/subjects/$1/versions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
id_c=$(register "$T_C-value" "$src/schemas/customer.avsc")
id_o=$(register "$T_O-value" "$src/schemas/order.avsc")
gen() { "$bin/tillstream-gen" --customers 15 --orders 30 --seed 23 "$@" 2>>"$work/gen.log"; }
gen --out-customers "$work/c.jsonl" --out-orders "$work/o.jsonl"
gen --format avro --schema-id-customers "$id_c" --schema-id-orders "$id_o" \
    --kafka "$TS_KAFKA_BOOTSTRAP" --topic-customers "$T_C" --topic-orders "$T_O"

# refused: the consumer waits, says why (and which key to set), counts it
refused() { # refused NAME REGISTRY-JSON PATTERN
  write_config "$work/$1.json" "{\"registry\": $2, \"admin\": {\"listen\": \"127.0.0.1:0\"}}"
  "$bin/tillstream-customers" --config "$work/$1.json" >"$work/$1.log" 2>&1 &
  local p=$! n=0 port
  pids+=($p)
  for _ in $(seq 1 300); do grep -q "$3" "$work/$1.log" && break; sleep 0.1; done
  grep -q "$3" "$work/$1.log" || { echo "$1: no '$3' in the log" >&2; tail -5 "$work/$1.log" >&2; exit 1; }
  grep -q 'registry.ca_bundle' "$work/$1.log" || { echo "$1: the log does not name registry.ca_bundle" >&2; exit 1; }
  echo "$1: $(grep -m1 "$3" "$work/$1.log")"
  port=$(grep -o '"port":[0-9]*' "$work/$1.log" | head -1 | cut -d: -f2)
  for _ in $(seq 1 100); do
    n=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^tillstream_registry_unavailable_total/ {s += $NF} END {print s + 0}')
    [ "$n" -ge 2 ] && break; sleep 0.1
  done
  [ "$n" -ge 2 ] || { echo "$1: registry failures not counted: $n" >&2; exit 1; }
  kill -TERM "$p"; wait "$p"
  [ -z "$(read_dlq)" ] || { echo "$1: records dead-lettered for a TLS failure" >&2; exit 1; }
  [ "$(curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" | python3 -c 'import json,sys; print(sum(a["profiles"] for a in json.load(sys.stdin)["accounts"].values()))')" = 0 ] ||
    { echo "$1: profiles delivered through an unverified registry" >&2; exit 1; }
}
refused no-ca "{\"url\": \"$url\"}" 'certificate'
refused wrong-host "{\"url\": \"${url/127.0.0.1/localhost}\", \"ca_bundle\": \"$ca\"}" 'host name'

# trusted: the CA from the config, the name the certificate carries
write_config "$work/config.json" "{\"registry\": {\"url\": \"$url\", \"ca_bundle\": \"$ca\"}}"
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/customers.log"
timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/orders.log"
"$bin/tillstream-customers" --config "$work/config.json" --dry-run --input "$work/c.jsonl" >"$work/c.dry"
"$bin/tillstream-orders" --config "$work/config.json" --dry-run --input "$work/o.jsonl" \
    --customers "$work/c.jsonl" >"$work/o.dry"
curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" >"$work/stats.json"
read_dlq >"$work/dlq.json"
python3 - "$work" <<'PY'
import json, sys, collections
w = sys.argv[1]
stats = json.load(open(w + "/stats.json"))["accounts"]
cdry = [json.loads(l) for l in open(w + "/c.dry")]
odry = [json.loads(l) for l in open(w + "/o.dry")]
for acct in ("brand-a", "brand-b", "brand-c"):
    want = sum(len(r["events"]) for r in odry if r["account"] == acct and not r["dead_letter"] and not r["skipped"])
    assert stats[acct]["events_recorded"] == want, (acct, stats[acct]["events_recorded"], want)
assert sum(s["profiles"] for s in stats.values()) > 0
dlq = [json.loads(l) for l in open(w + "/dlq.json", errors="replace") if l.strip()]
reasons = collections.Counter(dict(zip(r["headers"][0::2], r["headers"][1::2]))["tillstream.reason"] for r in dlq)
want = collections.Counter(r["dead_letter"]["reason"] for r in cdry + odry if r["dead_letter"])
assert reasons == want, (reasons, want)   # only what the data itself says
print("registry TLS: untrusted CA and wrong host name waited; %d events delivered with registry.ca_bundle"
      % sum(s["events_recorded"] for s in stats.values()))
PY
