#!/usr/bin/env bash
# The offline pipeline through the real binaries: one output line per input
# line in order, the known-bad sample records dead-lettered with the right
# reasons, skips counted, malformed lines become DECODE_ERROR without
# aborting, a bad config exits 2 naming the key path, no key needed.
set -euo pipefail
bin=$TS_BIN_DIR src=$TS_SOURCE_DIR
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
unset KLAVIYO_KEY_BRAND_A KLAVIYO_KEY_BRAND_B KLAVIYO_KEY_BRAND_C   # a dry run needs no key
cfg=$src/samples/config.sandbox.json

"$bin/tillstream-customers" --config "$cfg" --dry-run --input "$src/samples/customers.jsonl" >"$dir/c.out"
"$bin/tillstream-orders" --config "$cfg" --dry-run --input "$src/samples/orders.jsonl" \
    --customers "$src/samples/customers.jsonl" >"$dir/o.out"
# malformed and blank lines, from stdin
printf '%s\n' '{"order_id":"X1","status":"completed","occurred_at":"2026-11-20T10:15:00Z","total":"1","customer":{"email":"a@b.co","home_outlet_id":"101"}}' \
  'this is not json' '' '{"order_id":"X2","status":"completed","occurred_at":"2026-11-20T10:15:00Z","total":"1","lines":[{"line_id":"1","quantity":"two","row_total":1}]}' \
  | "$bin/tillstream-orders" --config "$cfg" --dry-run >"$dir/bad.out"

python3 - "$dir" "$src/samples" <<'PY'
import json, sys, collections
d, samples = sys.argv[1], sys.argv[2]
def load(p): return [json.loads(l) for l in open(p)]
c, o, bad = load(d + "/c.out"), load(d + "/o.out"), load(d + "/bad.out")
cin = [json.loads(l) for l in open(samples + "/customers.jsonl")]
oin = [json.loads(l) for l in open(samples + "/orders.jsonl")]
assert [x["input"] for x in c] == list(range(1, len(cin) + 1)), "customers: one line per input, in order"
assert [x["input"] for x in o] == list(range(1, len(oin) + 1)), "orders: one line per input, in order"
for x in c + o:
    assert set(x) >= {"input", "account", "events", "profiles", "dead_letter", "skipped"}, x
    assert (x["dead_letter"] is not None) + (x["skipped"] is not None) + bool(x["events"] or x["profiles"]) == 1, x
def by_id(rows, inputs, key):
    return {inp[key]: row for row, inp in zip(rows, inputs)}
cr = by_id(c, cin, "customer_id")
assert cr["C1024"]["dead_letter"]["reason"] == "UNMAPPED_OUTLET"
assert cr["C1025"]["dead_letter"]["reason"] == "NO_PROFILE_IDENTIFIER"
assert cr["C1026"]["dead_letter"]["reason"] == "NO_PROFILE_IDENTIFIER"
assert cr["C1022"]["account"] == "brand-a" and "DEFAULT_OUTLET" in cr["C1022"]["warnings"]
assert "PHONE_DROPPED" in cr["C1027"]["warnings"] and cr["C1027"]["dead_letter"] is None
assert cr["C1029"]["profiles"][0]["email"] == "mixed.case@example.com"
# a landline with SMS consent: kept on the profile, never SMS-subscribed
p = cr["C1028"]["profiles"][0]
assert p["phone_number"] == "+61299990028" and "sms" not in p.get("subscriptions", {}), p
assert cr["C1028"]["warnings"] == ["SMS_NOT_MOBILE"], cr["C1028"]
assert cr["C1001"]["profiles"][0]["subscriptions"]["sms"] == "SUBSCRIBED"   # a mobile
# consent: true subscribes, false unsubscribes, null leaves untouched
for cid, inp in zip([i["customer_id"] for i in cin], cin):
    row = cr[cid]
    if row["dead_letter"]: continue
    subs = row["profiles"][0].get("subscriptions", {})
    want = {True: "SUBSCRIBED", False: "UNSUBSCRIBED", None: None}[inp["email_consent"]]
    assert subs.get("email") == want, (cid, subs, inp["email_consent"])
orr = by_id(o, oin, "order_id")
reasons = collections.Counter(x["dead_letter"]["reason"] for x in o if x["dead_letter"])
skips = collections.Counter(x["skipped"] for x in o if x["skipped"])
assert skips == {"VOIDED": 2, "TEST_ORDER": 2}, skips
assert reasons == {"UNMAPPED_OUTLET": 2, "NO_PROFILE_IDENTIFIER": 3, "UNKNOWN_CUSTOMER": 1}, reasons
for x in o:
    if x["skipped"] or x["dead_letter"]:
        assert x["account"] is None and x["events"] == [] and x["profiles"] == [], x
def metric(e): return e["metric"]["data"]["attributes"]["name"]
def only(oid): ev = orr[oid]["events"]; assert len(ev) == 1, ev; return ev[0]
# refunds: refund id as unique_id, value = refund amount, else the order total
e = only("O5044"); assert (metric(e), e["unique_id"], e["value"], e["properties"]["Reason"]) == ("Refunded Order", "R-91", 199.99, "Changed mind"), e
e = only("O5045"); assert (e["unique_id"], e["value"]) == ("O5045:refunded", 12.5), e
e = only("O5046"); assert (metric(e), e["unique_id"], e["properties"]["Reason"]) == ("Cancelled Order", "O5046:cancelled", "Out of stock"), e
e = only("O5058"); assert (metric(e), e["unique_id"]) == ("Fulfilled Order", "O5058:fulfilled"), e
assert len(e["properties"]["Items"]) == 1 and e["properties"]["StoreId"] == "202"
# online orders of customers without a Home Outlet use routing.default_online_outlet
assert orr["O5039"]["account"] == "brand-a" and "DEFAULT_OUTLET" in orr["O5039"]["warnings"]
assert orr["O5041"]["dead_letter"] is None and "PHONE_DROPPED" in orr["O5041"]["warnings"]
assert "phone_number" not in orr["O5041"]["events"][0]["profile"]
# three lines with the same SKU: three distinct unique_ids
rep = orr["O5049"]["events"]
assert [e["unique_id"] for e in rep] == ["O5049", "O5049:1", "O5049:2", "O5049:3"]
assert len({e["properties"]["SKU"] for e in rep[1:]}) == 1
# a phone-only embedded snapshot for a customer not in the table
p = orr["O5050"]["events"][0]["profile"]
assert orr["O5050"]["account"] == "brand-b" and p["phone_number"] == "+61395550101" and "email" not in p, p
assert p["properties"]["HomeOutletId"] == "202" and p["properties"]["MostRecentStoreId"] == "202"
# amounts given as JSON numbers and times as epoch ms
e = orr["O5052"]["events"][0]
assert e["value"] == 84.4 and e["time"].startswith("2025-11-24T"), e
# unique ids are unique across the whole run per metric
ids = [(metric(e), e["unique_id"]) for x in o for e in x["events"]]
assert len(ids) == len(set(ids)), "duplicate unique_id"
assert orr["O5022"]["events"][0]["value"] == 335.99 and '"value":335.99' in open(d + "/o.out").read()
rep = orr["O5023"]["events"]
assert [e["unique_id"] for e in rep] == ["O5023", "O5023:1", "O5023:2"]
assert rep[1]["properties"]["SKU"] == rep[2]["properties"]["SKU"]
assert orr["O5035"]["account"] == "brand-c"    # embedded snapshot wins over the table
assert orr["O5038"]["account"] == "brand-b"    # routes by Home Outlet, not the pop-up store
for x in o:
    for e in x["events"]:
        assert e["profile"]["external_id"] and (e["profile"].get("email") or e["profile"].get("phone_number"))
assert [x["input"] for x in bad] == [1, 2, 3, 4]
assert bad[0]["account"] == "brand-a" and len(bad[0]["events"]) == 1
assert bad[1]["dead_letter"]["reason"] == "DECODE_ERROR" and "invalid JSON" in bad[1]["dead_letter"]["detail"]
assert bad[2]["dead_letter"]["reason"] == "DECODE_ERROR"
assert bad[3]["dead_letter"]["detail"].startswith("lines[0].quantity:")
print("dry run: %d customers, %d orders checked" % (len(c), len(o)))
PY

# a bad config: exit 2 and the key path
echo '{"accounts":[{"name":"a","api_key_env":"K","outlets":"101"}]}' >"$dir/bad.json"
set +e
"$bin/tillstream-orders" --config "$dir/bad.json" --dry-run </dev/null 2>"$dir/err"; rc=$?
set -e
[ "$rc" = 2 ] || { echo "bad config exit code $rc, want 2" >&2; exit 1; }
grep -q 'accounts\[0\].outlets: expected an array of strings' "$dir/err"
"$bin/tillstream-orders" --help | grep -c -- --dry-run >/dev/null
"$bin/tillstream-customers" --version | grep -c '^tillstream-customers ' >/dev/null
