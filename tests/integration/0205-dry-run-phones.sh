#!/usr/bin/env bash
# Issue 16's phone table through the real binary's dry run: with the
# default country given as a calling code ("61") and as a region ("AU"),
# each number comes out as libphonenumber reads it (E.164, PhoneExtension,
# SMS subscribed only for mobiles, SMS_NOT_MOBILE for landline / 1300 /
# 1800, invalid numbers dropped, a phone-only customer with an invalid
# number dead-lettered NO_PROFILE_IDENTIFIER saying why), and a bad
# routing.default_phone_country exits 2 naming the key. No broker needed.
set -euo pipefail
bin=$TS_BIN_DIR
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
unset KLAVIYO_KEY_BRAND_A

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
table = ["+61 0412 345 678", "61412345678", "+44 (0)20 7946 0958", "+1 (415) 555-0100 ext 2",
         "+61 2 9876 5432 x12", "1300 123 456", "1800 123 456", "9876 5432", "+999 123 456 789"]
with open(d + "/in.jsonl", "w") as f:
    for i, p in enumerate(table):
        f.write(json.dumps({"customer_id": "C%d" % i, "email": "c%d@example.com" % i, "phone": p,
                            "home_outlet_id": "101", "sms_consent": True}) + "\n")
    # phone only, invalid: no identifier left
    f.write(json.dumps({"customer_id": "C99", "phone": "9876 5432", "home_outlet_id": "101",
                        "sms_consent": True}) + "\n")
for country in ("61", "AU"):
    json.dump({"accounts": [{"name": "brand-a", "api_key_env": "KLAVIYO_KEY_BRAND_A", "outlets": ["101"]}],
               "routing": {"default_phone_country": country}}, open("%s/cfg-%s.json" % (d, country), "w"))
PY

for country in 61 AU; do
  "$bin/tillstream-customers" --config "$dir/cfg-$country.json" --dry-run --input "$dir/in.jsonl" >"$dir/out-$country.jsonl"
done
cmp "$dir/out-61.jsonl" "$dir/out-AU.jsonl"   # "61" and "AU" are the same default country

python3 - "$dir/out-61.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
# input -> (phone_number, PhoneExtension, sms subscription, warnings)
want = [("+61412345678", None, "SUBSCRIBED", []),
        ("+61412345678", None, "SUBSCRIBED", []),
        ("+442079460958", None, None, ["SMS_NOT_MOBILE"]),          # fixed line
        ("+14155550100", "2", "SUBSCRIBED", []),                    # US: fixed line or mobile
        ("+61298765432", "12", None, ["SMS_NOT_MOBILE"]),
        ("+611300123456", None, None, ["SMS_NOT_MOBILE"]),          # shared cost
        ("+611800123456", None, None, ["SMS_NOT_MOBILE"]),          # toll free
        (None, None, None, ["PHONE_DROPPED"]),                      # no area code
        (None, None, None, ["PHONE_DROPPED"])]                      # no such country code
assert len(rows) == len(want) + 1, rows
for row, (e164, ext, sms, warnings) in zip(rows, want):
    assert row["dead_letter"] is None and row["account"] == "brand-a", row
    p = row["profiles"][0]
    got = (p.get("phone_number"), p["properties"].get("PhoneExtension"),
           p.get("subscriptions", {}).get("sms"), row.get("warnings", []))
    assert got == (e164, ext, sms, warnings), (row["input"], got)
last = rows[-1]
assert last["dead_letter"]["reason"] == "NO_PROFILE_IDENTIFIER", last
assert "phone number invalid" in last["dead_letter"]["detail"], last
assert "9876" not in last["dead_letter"]["detail"], last
assert sum(1 for r in rows if r["profiles"] and r["profiles"][0].get("subscriptions", {}).get("sms") == "SUBSCRIBED") == 3
print("dry run phones: %d rows as libphonenumber reads them" % len(rows))
PY

# a default country libphonenumber does not know: exit 2 naming the key
for bad in '"+61"' '"999"' '"XX"'; do
  echo "{\"accounts\":[{\"name\":\"a\",\"api_key_env\":\"K\",\"outlets\":[\"1\"]}],\"routing\":{\"default_phone_country\":$bad}}" >"$dir/bad.json"
  set +e
  "$bin/tillstream-customers" --config "$dir/bad.json" --dry-run </dev/null >/dev/null 2>"$dir/err"; rc=$?
  set -e
  [ "$rc" = 2 ] || { echo "default_phone_country $bad: exit $rc, want 2" >&2; exit 1; }
  grep -q 'routing.default_phone_country: ' "$dir/err" || { cat "$dir/err" >&2; exit 1; }
done
echo "bad default_phone_country: exit 2 naming the key"
