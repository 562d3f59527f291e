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
register() { # register SUBJECT AVSC -> id
  python3 -c 'import json,sys; print(json.dumps({"schema": open(sys.argv[1]).read()}))' "$2" |
    curl -fsS -u "$user:$pw" -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
      --data @- "$url/subjects/$1/versions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
id_c=$(register "$T_C-value" "$src/schemas/customer.avsc")
id_o=$(register "$T_O-value" "$src/schemas/order.avsc")
gen() { "$bin/tillstream-gen" --customers 15 --orders 30 --seed 21 "$@" 2>>"$work/gen.log"; }
gen --out-customers "$work/c.jsonl" --out-orders "$work/o.jsonl"
gen --format avro --schema-id-customers "$id_c" --schema-id-orders "$id_o" \
    --kafka "$TS_KAFKA_BOOTSTRAP" --topic-customers "$T_C" --topic-orders "$T_O"

# 1. refused: a wrong password
export TS_IT_REG_USER=$user TS_IT_REG_BAD=wrong-password
write_config "$work/bad.json" \
  "{\"registry\": {\"url\": \"$url\", \"username_env\": \"TS_IT_REG_USER\", \"password_env\": \"TS_IT_REG_BAD\"},
    \"admin\": {\"listen\": \"127.0.0.1:0\"}}"
"$bin/tillstream-customers" --config "$work/bad.json" >"$work/bad.log" 2>&1 &
bpid=$!; pids+=($bpid)
for _ in $(seq 1 300); do grep -q 'refused our credentials' "$work/bad.log" && break; sleep 0.1; done
grep -q 'refused our credentials' "$work/bad.log" || { tail -5 "$work/bad.log" >&2; exit 1; }
grep -q 'registry.username_env' "$work/bad.log"
port=$(grep -o '"port":[0-9]*' "$work/bad.log" | head -1 | cut -d: -f2)
for _ in $(seq 1 100); do
  n=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^tillstream_registry_unavailable_total/ {s += $NF} END {print s + 0}')
  [ "$n" -ge 2 ] && break; sleep 0.1
done
[ "$n" -ge 2 ] || { echo "registry failures not counted: $n" >&2; exit 1; }
kill -TERM "$bpid"; wait "$bpid"
[ -z "$(read_dlq)" ] || { echo "records dead-lettered for refused credentials" >&2; exit 1; }

# 2. the right credentials, the password from a file
printf '%s\n' "$pw" >"$work/registry-password"
write_config "$work/config.json" \
  "{\"registry\": {\"url\": \"$url\", \"username_env\": \"TS_IT_REG_USER\", \"password_file\": \"$work/registry-password\"}}"
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/customers.log"
timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/orders.log"
"$bin/tillstream-orders" --config "$work/config.json" --dry-run --input "$work/o.jsonl" \
    --customers "$work/c.jsonl" >"$work/o.dry"
curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" >"$work/stats.json"
read_dlq >"$work/dlq.json"
python3 - "$work" <<'PY'
import json, sys, collections
w = sys.argv[1]
dry = [json.loads(l) for l in open(w + "/o.dry")]
stats = json.load(open(w + "/stats.json"))["accounts"]
for acct in ("brand-a", "brand-b", "brand-c"):
    want = sum(len(r["events"]) for r in dry if r["account"] == acct and not r["dead_letter"] and not r["skipped"])
    assert stats[acct]["events_recorded"] == want, (acct, stats[acct]["events_recorded"], want)
dlq = [json.loads(l) for l in open(w + "/dlq.json", errors="replace") if l.strip()]
reasons = collections.Counter(dict(zip(r["headers"][0::2], r["headers"][1::2]))["tillstream.reason"] for r in dlq)
want = collections.Counter(r["dead_letter"]["reason"] for r in dry if r["dead_letter"])
assert reasons == want, (reasons, want)   # only what the data itself says
print("basic auth: %d events delivered with the password from a file" % sum(s["events_recorded"] for s in stats.values()))
PY
! grep -q -- "$pw" "$work/bad.log" "$work/customers.log" "$work/orders.log" || { echo "the registry password leaked into a log" >&2; exit 1; }
