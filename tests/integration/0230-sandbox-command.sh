#!/usr/bin/env bash
# README command 1 (scripts/sandbox.sh: mock cluster, simulator, stand-in
# registry, JSON samples + generated Avro) prints per account exactly the
# events the offline pipeline (--dry-run) says for the same records, and
# the dead letters by reason, including the one undecodable record.
. "$TS_SOURCE_DIR/tests/lib.sh"
TS_SKIP_SETUP=1 TS_BUILD_DIR=$bin timeout 300 "$src/scripts/sandbox.sh" >"$work/out.txt" 2>"$work/err.txt" ||
  { cat "$work/err.txt" "$work/out.txt" >&2; exit 1; }
grep -q 'Confluent Avro' "$work/err.txt"
# the same records, for the dry run: the samples, and the generator's Avro records as JSON
"$bin/tillstream-gen" --customers 40 --orders 120 --seed 7 --out-customers "$work/gc.jsonl" --out-orders "$work/go.jsonl"
cat "$src/samples/customers.jsonl" "$work/gc.jsonl" >"$work/c.jsonl"
cat "$src/samples/orders.jsonl" "$work/go.jsonl" >"$work/o.jsonl"
cfg=$src/samples/config.sandbox.json
"$bin/tillstream-customers" --config "$cfg" --dry-run --input "$work/c.jsonl" >"$work/c.dry"
"$bin/tillstream-orders" --config "$cfg" --dry-run --input "$work/o.jsonl" --customers "$work/c.jsonl" >"$work/o.dry"
python3 - "$work" <<'PY'
import json, sys, collections, re
w = sys.argv[1]
out = open(w + "/out.txt").read()
rows = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in
        re.finditer(r"^(brand-\w)\s+(\d+)\s+(\d+)\s+\d+\s+(\d+)$", out, re.M)}
dlq = {m.group(1): int(m.group(2)) for m in re.finditer(r"^  ([A-Z_]+)\s+(\d+)$", out, re.M)}
load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
c, o = load(w + "/c.dry"), load(w + "/o.dry")
for acct in ("brand-a", "brand-b", "brand-c"):
    ev = sum(len(r["events"]) for r in o if r["account"] == acct and not r["dead_letter"] and not r["skipped"])
    pr = len({r["profiles"][0]["external_id"] for r in c if r["account"] == acct and not r["dead_letter"] and r["profiles"]})
    assert rows[acct] == (ev, pr), (acct, rows.get(acct), (ev, pr))
want = collections.Counter(r["dead_letter"]["reason"] for r in c + o if r["dead_letter"])
want["DECODE_ERROR"] += 1   # the undecodable record the sandbox adds
assert dlq == dict(want), (dlq, dict(want))
assert re.search(r"^  total\s+%d$" % sum(want.values()), out, re.M), out
print("sandbox: %s, dead letters %s" % (rows, dlq))
PY
