#!/usr/bin/env bash
# Avro through the consumers, on the real broker with the schema registry
# of scripts/registry.sh and the Klaviyo simulator.
#
# Phase 1: customers and orders, each record written as Confluent Avro with
# an older (v1: optional fields removed), a newer (v2: reordered, fields
# added with defaults, others removed) or the current schema, or as plain
# JSON, interleaved on the same keyed topics with garbage, a truncated
# Avro record and an unknown schema id. Both consumers must deliver exactly
# what the offline pipeline (--dry-run) says for the same records as the
# writer schema saw them (fields it lacks at their defaults): the same
# events per account with the same values and properties, the same
# profiles; the bad records dead-lettered DECODE_ERROR (with the byte
# offset) and SCHEMA_NOT_FOUND.
#
# Phase 2: the registry is stopped; customers and orders written with a
# schema version the consumers have not seen (v3) arrive. The customers
# consumer pauses on them, the orders consumer's customer table waits for
# them (not ready), nothing is dead-lettered; the registry comes back and
# everything is delivered, exactly once.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
registry_start
topics
start_sim
write_config "$work/config.json" "{\"registry\": {\"url\": \"$url\"}}"
T_C="pos.customers.$sfx" T_O="pos.orders.$sfx"
av="$src/tests/integration/avro"
gen() { "$bin/tillstream-gen" --customers 24 --orders 60 "$@" 2>>"$work/gen.log"; }

# a writer schema file that cannot be read is a config error: exit 2, key path
write_config "$work/bad.json" "{\"registry\": {\"url\": \"$url\", \"raw_writer_schema_orders\": \"$work/nope.avsc\"}}"
rc=0; "$bin/tillstream-orders" --config "$work/bad.json" --exit-at-end >/dev/null 2>"$work/bad.err" || rc=$?
[ "$rc" = 2 ] && grep -q 'registry.raw_writer_schema_orders: cannot read' "$work/bad.err" ||
  { echo "bad raw writer schema: exit $rc: $(cat "$work/bad.err")" >&2; exit 1; }

# ---- phase 1 -----------------------------------------------------------------
gen --seed 11 --keys --out-customers "$work/c.kv" --out-orders "$work/o.kv"
for v in v1 v2; do
  gen --seed 11 --format avro --registry "$url" --topic-customers "$T_C" --topic-orders "$T_O" \
      --writer-schema-customers "$av/customer-$v.avsc" --writer-schema-orders "$av/order-$v.avsc" \
      --out-customers "$work/c-$v" --out-orders "$work/o-$v"
done
gen --seed 11 --format avro --registry "$url" --topic-customers "$T_C" --topic-orders "$T_O" \
    --out-customers "$work/c-cur" --out-orders "$work/o-cur"

# The records to produce (key @@K@@ bytes @@M@@ ...) and, for the dry run,
# each record as its writer schema saw it.
cat >"$work/mix.py" <<'PY'
import json, sys, os
w, av, schemas, phase = sys.argv[1:5]
def named(schema, names):
    if isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            names[schema["name"]] = schema
            if schema.get("namespace"): names[schema["namespace"] + "." + schema["name"]] = schema
        for f in schema.get("fields", []): named(f["type"], names)
        if schema.get("type") == "array": named(schema["items"], names)
    elif isinstance(schema, list):
        for b in schema: named(b, names)
def project(schema, value, names):
    """value as a producer with `schema` wrote it: fields it lacks dropped"""
    if isinstance(schema, str):
        return project(names[schema], value, names) if schema in names else value
    if isinstance(schema, list):
        if value is None: return None
        for b in schema:
            b = names.get(b, b) if isinstance(b, str) else b
            t = b if isinstance(b, str) else b.get("type")
            if (t == "record" and isinstance(value, dict)) or (t == "array" and isinstance(value, list)):
                return project(b, value, names)
        return value
    t = schema.get("type")
    if t == "record":
        return {f["name"]: project(f["type"], value[f["name"]], names) for f in schema["fields"] if f["name"] in value}
    if t == "array":
        return [project(schema["items"], v, names) for v in value]
    return value
def writer(kind, v):
    s = json.load(open(f"{av}/{kind}-{v}.avsc" if v in ("v1", "v2") else f"{schemas}/{kind}.avsc"))
    names = {}; named(s, names); return s, names
K, M = b"@@K@@", b"@@M@@"
for kind, short in (("customer", "c"), ("order", "o")):
    recs = [l.rstrip("\n").split("\t", 1) for l in open(f"{w}/{short}.kv") if l.strip()]
    versions = ["v1", "v2", "cur", "json"] if phase == "1" else ["v3"]
    out, exp = open(f"{w}/{short}{phase}.bin", "wb"), open(f"{w}/{short}{phase}.exp.jsonl", "w")
    for i, (key, line) in enumerate(recs):
        if phase == "2" and kind == "order" and i < 60: continue  # delivered in phase 1
        v = versions[i % len(versions)]
        value = json.loads(line)
        if v == "json":
            data = line.encode()
        else:
            data = open(f"{w}/{short}-{v}/{i:08d}.avro", "rb").read()
            if v != "v3":
                s, names = writer(kind, v); value = project(s, value, names)
        out.write(key.encode() + K + data + M)
        exp.write(json.dumps(value) + "\n")
        if phase == "1" and kind == "order" and i == 5: out.write(b"bad-garbage" + K + b"not a record at all" + M)
        if phase == "1" and kind == "order" and i == 10:
            v2 = open(f"{w}/{short}-v2/{i:08d}.avro", "rb").read()
            out.write(b"bad-truncated" + K + v2[:20] + M)
        if phase == "1" and kind == "order" and i == 15:
            out.write(b"bad-unknown-id" + K + b"\x00\x00\x0f\x42\x3f\x02\x04ab" + M)
        if phase == "1" and kind == "customer" and i == 3: out.write(b"bad-short-frame" + K + b"\x00\x00" + M)
PY
python3 "$work/mix.py" "$work" "$av" "$src/schemas" 1
P() { kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "$1" -K '@@K@@' -D '@@M@@' <"$2"; }
P "$T_C" "$work/c1.bin"
P "$T_O" "$work/o1.bin"

timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/customers.log"
timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >"$work/orders.log"

"$bin/tillstream-customers" --config "$work/config.json" --dry-run --input "$work/c1.exp.jsonl" >"$work/c1.dry"
"$bin/tillstream-orders" --config "$work/config.json" --dry-run --input "$work/o1.exp.jsonl" \
    --customers "$work/c1.exp.jsonl" >"$work/o1.dry"
snapshot() { # snapshot NAME: the simulator's events/profiles/stats and the dead letters
  for a in brand-a brand-b brand-c; do
    curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/$a/events" >"$work/$1.$a.events"
    curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/$a/profiles" >"$work/$1.$a.profiles"
  done
  curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" >"$work/$1.stats"
  read_dlq >"$work/$1.dlq"
}
snapshot p1

cat >"$work/check.py" <<'PY'
import json, sys, collections
w, snap, dry_c, dry_o, extra = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(","), json.loads(sys.argv[5])
load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
c_dry = [r for p in dry_c for r in load(p)]
o_dry = [r for p in dry_o for r in load(p)]
stats = json.load(open(f"{w}/{snap}.stats"))["accounts"]
n_events = 0
for acct in ("brand-a", "brand-b", "brand-c"):
    want = {(e["metric"]["data"]["attributes"]["name"], e["unique_id"]): e
            for r in o_dry if r["account"] == acct and not r["dead_letter"] and not r["skipped"] for e in r["events"]}
    got = collections.Counter((e["metric"], e["unique_id"]) for e in load(f"{w}/{snap}.{acct}.events"))
    assert set(got) == set(want), (acct, sorted(set(want) ^ set(got))[:5])
    assert all(n == 1 for n in got.values()), acct
    for e in load(f"{w}/{snap}.{acct}.events"):
        x = want[(e["metric"], e["unique_id"])]
        for k in ("value", "value_currency", "time", "properties"):
            assert e.get(k) == x.get(k), (acct, e["unique_id"], k, e.get(k), x.get(k))
    assert stats[acct]["events_recorded"] == len(want) and stats[acct]["duplicates_ignored"] == 0, stats[acct]
    n_events += len(want)
    profiles = {p["external_id"] for p in load(f"{w}/{snap}.{acct}.profiles")}
    want_p = {r["profiles"][0]["external_id"] for r in c_dry if r["account"] == acct and not r["dead_letter"] and r["profiles"]}
    assert profiles == want_p, (acct, profiles ^ want_p)
dlq = [json.loads(l) for l in open(f"{w}/{snap}.dlq", errors="replace") if l.strip()]  # Avro payloads are bytes
hd = lambda r: dict(zip(r["headers"][0::2], r["headers"][1::2]))
want_reasons = collections.Counter(r["dead_letter"]["reason"] for r in c_dry + o_dry if r["dead_letter"])
want_reasons.update(extra)
got_reasons = collections.Counter(hd(r)["tillstream.reason"] for r in dlq)
assert got_reasons == want_reasons, (got_reasons, want_reasons)
by_key = {r["key"]: hd(r) for r in dlq}
if "bad-garbage" in by_key:
    assert by_key["bad-garbage"]["tillstream.reason"] == "DECODE_ERROR"
    assert "neither Confluent Avro" in by_key["bad-garbage"]["tillstream.detail"], by_key["bad-garbage"]
    t = by_key["bad-truncated"]
    assert t["tillstream.reason"] == "DECODE_ERROR" and "at byte" in t["tillstream.detail"], t
    u = by_key["bad-unknown-id"]
    assert u["tillstream.reason"] == "SCHEMA_NOT_FOUND" and "999999" in u["tillstream.detail"], u
    assert u["__connect.errors.stage"] == "VALUE_CONVERTER"
    s = by_key["bad-short-frame"]
    assert s["tillstream.reason"] == "DECODE_ERROR" and "truncated" in s["tillstream.detail"], s
    assert [r for r in dlq if r["key"] == "bad-garbage"][0]["payload"] == "not a record at all"
print("%s: %d events over 3 accounts equal the dry run (values, properties, times), dead letters %s"
      % (snap, n_events, dict(got_reasons)))
PY
python3 "$work/check.py" "$work" p1 "$work/c1.dry" "$work/o1.dry" \
    '{"DECODE_ERROR": 3, "SCHEMA_NOT_FOUND": 1}'

# `tillstream-dlq show` keeps binary (Avro) dead letters whole: base64 + schema id
"$bin/tillstream-dlq" show --config "$work/config.json" --reason SCHEMA_NOT_FOUND --json >"$work/show.json"
"$bin/tillstream-dlq" show --config "$work/config.json" --reason DECODE_ERROR --json >"$work/show-decode.json"
python3 - "$work" <<'PY'
import base64, json, sys
w = sys.argv[1]
recs = [json.loads(l) for l in open(w + "/show.json")]
assert len(recs) == 1 and recs[0]["key"] == "bad-unknown-id", recs
r = recs[0]
assert base64.b64decode(r["value_base64"]) == b"\x00\x00\x0f\x42\x3f\x02\x04ab", r
assert r["value_format"] == "confluent-avro" and r["schema_id"] == 999999, r
d = {x["key"]: x for x in map(json.loads, open(w + "/show-decode.json"))}
assert d["bad-garbage"]["value_raw"] == "not a record at all", d["bad-garbage"]
assert base64.b64decode(d["bad-short-frame"]["value_base64"]) == b"\x00\x00"
print("dlq show: binary dead letters whole (base64, schema id)")
PY

# the pre-go-live audit reads the same mixed customers topic (Avro via the registry)
"$bin/tillstream-dlq" audit --config "$work/config.json" --json >"$work/audit.json"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
a = json.load(open(w + "/audit.json"))["overall"]
exp = [json.loads(l) for l in open(w + "/c1.exp.jsonl")]
assert a["customers"] == len(exp) == 24, a
assert a["no_home_outlet"] == sum(1 for c in exp if not c.get("home_outlet_id")), a
print("audit: %d customers from Avro v1/v2/current + JSON" % a["customers"])
PY

# the generator produces keyed Avro straight to Kafka (--kafka)
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "gen.orders.$sfx" 1
"$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "gen.customers.$sfx" 1
"$bin/tillstream-gen" --customers 5 --orders 40 --seed 5 --format avro --registry "$url" \
    --kafka "$TS_KAFKA_BOOTSTRAP" --topic-customers "gen.customers.$sfx" --topic-orders "gen.orders.$sfx" 2>>"$work/gen.log"
kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "gen.orders.$sfx" -e -q -f '%k\n' >"$work/gen.keys"
[ "$(grep -c '^O' "$work/gen.keys")" = 40 ] || { echo "gen --kafka: $(wc -l <"$work/gen.keys") keyed records" >&2; exit 1; }
kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "gen.orders.$sfx" -e -q -f '%o %S\n%s\n' |
  "$bin/tillstream-decode" --kind orders --registry "$url" >"$work/gen.decoded"
[ "$(grep -c '"result":"ok"' "$work/gen.decoded")" = 40 ]

# ---- phase 2: a registry outage ------------------------------------------------
# v3: the current schemas with their fields in reverse order (a new id each)
python3 - "$src/schemas" "$work" <<'PY'
import json, sys
for k in ("customer", "order"):
    s = json.load(open(f"{sys.argv[1]}/{k}.avsc")); s["fields"].reverse()
    json.dump(s, open(f"{sys.argv[2]}/{k}-v3.avsc", "w"))
PY
# the same customers; orders 60..119 of the same generator stream are new
gen --seed 11 --orders 120 --format avro --registry "$url" --topic-customers "$T_C" --topic-orders "$T_O" \
    --writer-schema-customers "$work/customer-v3.avsc" --writer-schema-orders "$work/order-v3.avsc" \
    --out-customers "$work/c-v3" --out-orders "$work/o-v3"
gen --seed 11 --orders 120 --keys --out-customers /dev/null --out-orders "$work/o.kv"
python3 "$work/mix.py" "$work" "$av" "$src/schemas" 2

"$src/scripts/registry.sh" stop "$reg"
P "$T_C" "$work/c2.bin"
P "$T_O" "$work/o2.bin"
python3 - "$work/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["admin"] = {"listen": "127.0.0.1:0"}
json.dump(c, open(sys.argv[1], "w"))
PY
"$bin/tillstream-customers" --config "$work/config.json" >"$work/customers2.log" 2>&1 &
cpid=$!; pids+=($cpid)
"$bin/tillstream-orders" --config "$work/config.json" >"$work/orders2.log" 2>&1 &
opid=$!; pids+=($opid)
port_of() { for _ in $(seq 1 200); do
    p=$(grep -o '"port":[0-9]*' "$1" | head -1 | cut -d: -f2); [ -n "$p" ] && { echo "$p"; return 0; }; sleep 0.05
  done; echo "no admin port in $1" >&2; return 1; }
cport=$(port_of "$work/customers2.log"); oport=$(port_of "$work/orders2.log")
# both wait for the registry: retried several times, never dead-lettered
for _ in $(seq 1 600); do
  [ "$(metric "$cport" tillstream_registry_unavailable_total)" -ge 3 ] &&
    [ "$(metric "$oport" tillstream_registry_unavailable_total)" -ge 3 ] && break
  sleep 0.1
done
[ "$(metric "$cport" tillstream_registry_unavailable_total)" -ge 3 ] || { cat "$work/customers2.log" >&2; exit 1; }
[ "$(metric "$oport" tillstream_registry_unavailable_total)" -ge 3 ] || { cat "$work/orders2.log" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$oport/readyz")
[ "$code" = 503 ] || { echo "orders ready while its customer table waits for the registry: $code" >&2; exit 1; }
grep -q 'pausing until the schema registry answers' "$work/customers2.log"
grep -q 'pausing until the schema registry answers' "$work/orders2.log"
[ "$(metric "$cport" tillstream_dead_letter_total)" = 0 ] && [ "$(metric "$oport" tillstream_dead_letter_total)" = 0 ]
[ "$(read_dlq | wc -l)" = "$(wc -l <"$work/p1.dlq")" ] || { echo "dead letters written during the outage" >&2; exit 1; }

"$src/scripts/registry.sh" restart "$reg" >/dev/null
"$bin/tillstream-orders" --config "$work/config.json" --dry-run --input "$work/o2.exp.jsonl" \
    --customers "$work/c2.exp.jsonl" >"$work/o2.dry"
want=$(python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
n = 0
for p in ("o1.dry", "o2.dry"):
    for l in open(f"{w}/{p}"):
        r = json.loads(l)
        if not r["dead_letter"] and not r["skipped"]: n += len(r["events"])
print(n)
PY
)
for _ in $(seq 1 1200); do
  got=$(sim_counts all events_recorded)
  [ "$got" -ge "$want" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$oport/readyz")" = 200 ] && break
  sleep 0.1
done
[ "$got" = "$want" ] || { echo "events: $got, want $want" >&2; tail -5 "$work/orders2.log" >&2; exit 1; }
# the customers consumer retries on its own backoff (up to 30 s)
for _ in $(seq 1 600); do grep -q 'schema registry reachable again' "$work/customers2.log" && break; sleep 0.1; done
grep -q 'schema registry reachable again' "$work/customers2.log" || { tail -5 "$work/customers2.log" >&2; exit 1; }
# resumed partitions are fetched again after the first held record: SIGTERM
# only once every phase-2 customer record was consumed and completed (a
# record not yet read at SIGTERM is, rightly, left for the next start)
nc2=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().count(b"@@K@@"))' "$work/c2.bin")
for _ in $(seq 1 600); do
  [ "$(metric "$cport" tillstream_records_consumed_total)" -ge "$nc2" ] &&
    [ "$(metric "$cport" tillstream_inflight_records)" = 0 ] && break
  sleep 0.1
done
[ "$(metric "$cport" tillstream_records_consumed_total)" = "$nc2" ] ||
  { echo "customers consumed $(metric "$cport" tillstream_records_consumed_total) of $nc2" >&2; exit 1; }
kill -TERM "$cpid" "$opid"
wait "$cpid"; wait "$opid"
snapshot p2
python3 "$work/check.py" "$work" p2 "$work/c1.dry" "$work/o1.dry,$work/o2.dry" \
    '{"DECODE_ERROR": 3, "SCHEMA_NOT_FOUND": 1}'
# the outage records were completed and committed: nothing left to consume
timeout 60 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/customers3.log" 2>&1
grep -q '"message":"summary","consumed":0,' "$work/customers3.log" || { tail -3 "$work/customers3.log" >&2; exit 1; }
echo "registry outage: both consumers paused and resumed, nothing dead-lettered, nothing lost"
