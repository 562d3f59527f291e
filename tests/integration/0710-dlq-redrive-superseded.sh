#!/usr/bin/env bash
# tillstream-dlq redrive against the present (issue 17), on the real broker:
# - C777 has no Home Outlet and is dead-lettered NO_HOME_OUTLET; the POS then
#   sets outlet 201 (a newer record of the key). The redrive reports the dead
#   letter SUPERSEDED and re-sends nothing: the customer keeps outlet 201 and
#   its next order O777 is delivered to brand-b;
# - the same for C1024 on an unmapped outlet (999, UNMAPPED_OUTLET) moved to
#   301: order O-C1024-1 is delivered to brand-c;
# - a customer whose dead letter is still the latest word (C888) is redriven,
#   and a repeated redrive does nothing (the superseded ones are done too).
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json" '{"routing": {"default_online_outlet": null}}'
# C888 is fixed by config (a default online outlet), not by the POS
write_config "$work/fixed.json" '{"routing": {"default_online_outlet": "102"}}'
cust() { # cust ID OUTLET|null
  printf '%s\t{"customer_id":"%s","email":"%s@example.com","home_outlet_id":%s,"email_consent":true}\n' \
    "$1" "$1" "$(echo "$1" | tr 'A-Z' 'a-z')" "$2"
}
{ cust C777 null; cust C1024 '"999"'; cust C888 null; } |
  kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >"$work/c1.log"
"$bin/tillstream-dlq" stats --config "$work/config.json" --json >"$work/s1.json"
python3 -c "
import json; s = json.load(open('$work/s1.json'))
assert s['by_reason'] == {'NO_HOME_OUTLET': 2, 'UNMAPPED_OUTLET': 1}, s"

# the POS fixes C777 and C1024
{ cust C777 '"201"'; cust C1024 '"301"'; } | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'

"$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason NO_HOME_OUTLET --dry-run >"$work/dry.txt"
grep -q '^SUPERSEDED .* key C777 (NO_HOME_OUTLET): newer record at offset' "$work/dry.txt" || { cat "$work/dry.txt" >&2; exit 1; }
grep -q '^would redrive to .* key C888 (NO_HOME_OUTLET' "$work/dry.txt"
grep -q '^dry run: 1 record(s) would be redriven, 0 at the redrive limit (3), 1 superseded' "$work/dry.txt"

"$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason NO_HOME_OUTLET >"$work/rd1.txt"
grep -q '^SUPERSEDED .* key C777 ' "$work/rd1.txt" || { cat "$work/rd1.txt" >&2; exit 1; }
grep -q '^1 record(s) redriven, 0 at the redrive limit (3), 1 superseded' "$work/rd1.txt"
"$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason UNMAPPED_OUTLET >"$work/ru1.txt"
grep -q '^SUPERSEDED .* key C1024 (UNMAPPED_OUTLET)' "$work/ru1.txt" || { cat "$work/ru1.txt" >&2; exit 1; }
grep -q '^0 record(s) redriven, 0 at the redrive limit (3), 1 superseded' "$work/ru1.txt"
# superseded dead letters are done: a repeat finds nothing
for r in NO_HOME_OUTLET UNMAPPED_OUTLET; do
  "$bin/tillstream-dlq" redrive --config "$work/fixed.json" --reason "$r" >"$work/again.txt"
  grep -q '^0 record(s) redriven, 0 at the redrive limit (3), 0 superseded, 0 copies' "$work/again.txt" ||
    { cat "$work/again.txt" >&2; exit 1; }
done

# the customers topic still says 201 / 301 for the fixed customers
timeout 120 "$bin/tillstream-customers" --config "$work/fixed.json" --exit-at-end >"$work/c2.log"
"$bin/tillstream-dlq" audit --config "$work/fixed.json" --json >"$work/audit.json"
python3 -c "
import json; a = json.load(open('$work/audit.json'))
assert a['overall']['no_home_outlet'] == 1 and a['overall']['unmapped_outlet'] == 0, a   # C888 (defaulted)
assert a['by_outlet']['201']['customers'] == 1 and a['by_outlet']['301']['customers'] == 1, a"
# and their next orders go to their accounts
order() { # order ID CUSTOMER
  printf '%s\t{"order_id":"%s","customer_id":"%s","status":"completed","occurred_at":"2026-11-20T10:15:00+11:00","currency":"AUD","total":"10.00","lines":[{"line_id":"1","sku":"TEE","quantity":1,"row_total":"10.00"}]}\n' "$1" "$1" "$2"
}
{ order O777 C777; order O-C1024-1 C1024; } | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t'
timeout 120 "$bin/tillstream-orders" --config "$work/fixed.json" --exit-at-end >"$work/o.log"
events() { curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/$1/events"; }
events brand-b | grep -c '"O777' >/dev/null || { echo "O777 not delivered to brand-b" >&2; events brand-b >&2; exit 1; }
events brand-c | grep -c '"O-C1024-1' >/dev/null || { echo "O-C1024-1 not delivered to brand-c" >&2; exit 1; }
! events brand-a | grep -c 'O777\|O-C1024-1' >/dev/null
"$bin/tillstream-dlq" stats --config "$work/config.json" --json >"$work/s2.json"
python3 -c "
import json; s = json.load(open('$work/s2.json'))
assert s['by_reason'] == {'NO_HOME_OUTLET': 2, 'UNMAPPED_OUTLET': 1}, s   # no new dead letters"
echo "dlq: C777 (NO_HOME_OUTLET) and C1024 (UNMAPPED_OUTLET) SUPERSEDED after the POS fixed them, kept 201/301, orders to brand-b/brand-c; C888 redriven; repeats no-ops"
