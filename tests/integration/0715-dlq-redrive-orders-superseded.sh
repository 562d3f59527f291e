#!/usr/bin/env bash
# SUPERSEDED on the orders topic (issue 17), on the real broker: each status
# of an order is an event of its own, so a newer record of the same order
# supersedes a dead letter only when it has the same status.
# - O556 (completed) is dead-lettered UNKNOWN_CUSTOMER; the POS re-sends
#   O556 completed once C556 exists: delivered, and the redrive reports the
#   old dead letter SUPERSEDED (its Placed Order was delivered by the newer one);
# - O555 (completed) and then O555 (fulfilled) are both dead-lettered
#   UNKNOWN_CUSTOMER: the fulfilled record does not supersede the completed
#   one. After C555 is created both are redriven: brand-b gets O555's Placed
#   Order and its Fulfilled Order.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json"
cust() { printf '%s\t{"customer_id":"%s","email":"%s@example.com","home_outlet_id":"201"}\n' "$1" "$1" "$1"; }
order() { # order ID CUSTOMER STATUS
  printf '%s\t{"order_id":"%s","customer_id":"%s","status":"%s","occurred_at":"2026-11-20T10:15:00+11:00","currency":"AUD","total":"10.00","lines":[{"line_id":"1","sku":"TEE","quantity":1,"row_total":"10.00"}]}\n' "$1" "$1" "$2" "$3"
}
run() {
  timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >/dev/null
  timeout 120 "$bin/tillstream-orders" --config "$work/config.json" --exit-at-end >>"$work/orders.log"
}
{ order O556 C556 completed; order O555 C555 completed; order O555 C555 fulfilled; } |
  kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t'
run
"$bin/tillstream-dlq" stats --config "$work/config.json" --json | python3 -c "
import json, sys; s = json.load(sys.stdin)
assert s['by_reason'] == {'UNKNOWN_CUSTOMER': 3}, s"
cust C556 | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
run
order O556 C556 completed | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t'
cust C555 | kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
run
events() { curl -fsS "http://127.0.0.1:$sim_port/__sim/accounts/brand-b/events"; }
[ "$(events | grep -c '"O556"')" -ge 1 ] || { echo "the re-sent O556 was not delivered" >&2; exit 1; }

"$bin/tillstream-dlq" redrive --config "$work/config.json" --reason UNKNOWN_CUSTOMER >"$work/rd.txt"
grep -q '^SUPERSEDED .* key O556 (UNKNOWN_CUSTOMER)' "$work/rd.txt" || { cat "$work/rd.txt" >&2; exit 1; }
[ "$(grep -c '^redrive  to .* key O555 ' "$work/rd.txt")" = 2 ] || { cat "$work/rd.txt" >&2; exit 1; }
grep -q '^2 record(s) redriven, 0 at the redrive limit (3), 1 superseded' "$work/rd.txt"
run
events >"$work/b.events"
python3 - "$work/b.events" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
o555 = [e for e in ev if "O555" in json.dumps(e)]
txt = json.dumps(o555)
assert "Placed Order" in txt and "Fulfilled Order" in txt, txt[:2000]
PY
echo "dlq: O556 superseded by its re-sent completed record; O555 completed and fulfilled both redriven and delivered to brand-b"
