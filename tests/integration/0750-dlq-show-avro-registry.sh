#!/usr/bin/env bash
# tillstream-dlq show decodes Avro dead letters through the schema registry
# (issue 17), on the real broker with a registry (scripts/registry.sh):
# - with registry.url configured, a Confluent-framed customer or order dead
#   letter shows its decoded `value` (the field names of schemas/*.avsc, the
#   generator's values), plus the bytes (value_base64) and schema_id;
# - without a registry: base64 and schema_id only, no `value`.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
registry_start
topics
start_sim
write_config "$work/avro.json" "{\"routing\": {\"default_online_outlet\": null}, \"registry\": {\"url\": \"$url\"}}"
write_config "$work/plain.json" '{"routing": {"default_online_outlet": null}}'
g=(--customers 40 --orders 40 --seed 11)
"$bin/tillstream-gen" "${g[@]}" --out-customers "$work/c.jsonl" --out-orders "$work/o.jsonl" >/dev/null
"$bin/tillstream-gen" "${g[@]}" --format avro --registry "$url" --kafka "$TS_KAFKA_BOOTSTRAP" \
    --topic-customers "pos.customers.$sfx" --topic-orders "pos.orders.$sfx" >/dev/null 2>"$work/gen.log"
timeout 120 "$bin/tillstream-customers" --config "$work/avro.json" --exit-at-end >/dev/null
timeout 120 "$bin/tillstream-orders" --config "$work/avro.json" --exit-at-end >/dev/null
"$bin/tillstream-dlq" show --config "$work/avro.json" --json >"$work/avro.out"
"$bin/tillstream-dlq" show --config "$work/plain.json" --json >"$work/plain.out"
python3 - "$work" "pos.customers.$sfx" <<'PY'
import base64, json, sys
w, ctopic = sys.argv[1], sys.argv[2]
cust = {c["customer_id"]: c for c in map(json.loads, open(w + "/c.jsonl"))}
orders = {o["order_id"]: o for o in map(json.loads, open(w + "/o.jsonl"))}
avro = [json.loads(l) for l in open(w + "/avro.out")]
plain = [json.loads(l) for l in open(w + "/plain.out")]
assert avro and len(avro) == len(plain), (len(avro), len(plain))
kinds = set()
for a, p in zip(avro, plain):
    assert a["value_format"] == "confluent-avro" and a["schema_id"] > 0, a
    assert base64.b64decode(a["value_base64"])[0] == 0 and a["value_base64"] == p["value_base64"], a
    assert "value" not in p and p["schema_id"] == a["schema_id"], p      # no registry: bytes only
    v = a["value"]
    if a["headers"]["tillstream.source.topic"] == ctopic:
        want, kinds = cust[a["key"]], kinds | {"customer"}
        for f in ("customer_id", "email", "phone", "first_name", "last_name", "home_outlet_id",
                  "email_consent", "sms_consent", "loyalty_member"):
            assert v[f] == want[f], (f, v, want)
    else:
        want, kinds = orders[a["key"]], kinds | {"order"}
        assert v["order_id"] == want["order_id"] and v["customer_id"] == want["customer_id"], (v, want)
        assert v["status"] == want["status"] and len(v["lines"]) == len(want["lines"]), (v, want)
        assert float(v["total"]) == float(want["total"]), (v, want)
assert kinds == {"customer", "order"}, kinds
print(len(avro), "Avro dead letters decoded")
PY
echo "dlq: show decodes Avro customers and orders through the registry; base64 only without one"
