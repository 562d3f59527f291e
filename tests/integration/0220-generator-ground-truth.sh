#!/usr/bin/env bash
# tillstream-gen's ground-truth counts (--counts) agree with what the mapping
# does to its records: customers without Home Outlet, on unmapped outlets,
# without email/phone, subscribed; voided and test orders.
set -euo pipefail
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$TS_BIN_DIR/tillstream-gen" --customers 2000 --orders 3000 --seed 11 --out-customers "$dir/c.jsonl" \
    --out-orders "$dir/o.jsonl" --counts >"$dir/counts.json"
python3 - "$TS_SOURCE_DIR/samples/config.sandbox.json" "$dir/cfg.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["routing"]["default_online_outlet"] = None
json.dump(c, open(sys.argv[2], "w"))
PY
"$TS_BIN_DIR/tillstream-customers" --config "$dir/cfg.json" --dry-run --input "$dir/c.jsonl" >"$dir/c.dry"
"$TS_BIN_DIR/tillstream-orders" --config "$dir/cfg.json" --dry-run --input "$dir/o.jsonl" --customers "$dir/c.jsonl" >"$dir/o.dry"
python3 - "$dir" <<'PY'
import json, sys, collections
d = sys.argv[1]
want = json.load(open(d + "/counts.json"))
c = [json.loads(l) for l in open(d + "/c.dry")]
o = [json.loads(l) for l in open(d + "/o.dry")]
cin = [json.loads(l) for l in open(d + "/c.jsonl")]
reasons = collections.Counter(r["dead_letter"]["reason"] for r in c if r["dead_letter"])
assert len(c) == want["customers"]
assert reasons["NO_HOME_OUTLET"] == want["no_home_outlet"], (reasons, want)
assert reasons["UNMAPPED_OUTLET"] == want["unmapped_outlet"]
# identifiers are checked after routing, so count them on the inputs
assert sum(1 for x in cin if not x["email"] and not x["phone"]) == want["no_identifier"]
assert sum(1 for x in cin if x["email_consent"] is True and x["email"]) == want["email_subscribed"]
skips = collections.Counter(r["skipped"] for r in o if r["skipped"])
assert skips["VOIDED"] + skips["TEST_ORDER"] == want["voided"] + want["test"] - sum(
    1 for x in (json.loads(l) for l in open(d + "/o.jsonl")) if x["is_test"] and x["status"] == "voided")
print("generator: counts agree with the mapping on", len(c), "customers and", len(o), "orders")
PY
