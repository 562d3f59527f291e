#!/usr/bin/env bash
# tillstream-dlq per-record bookkeeping (issue 17), on the real broker:
# `redrive --reason UNMAPPED_OUTLET` then `redrive --reason NO_HOME_OUTLET`
# each redrive exactly their own records (the first no longer swallows the
# others), repeating either redrives nothing, and the source topic receives
# each redriven record exactly once. The bookkeeping topic is named by
# --state-topic (created by the tool, cleanup.policy=compact). A group that
# redrove with an older tillstream-dlq (committed offsets) is not re-sent what
# lies below its offsets.
. "$TS_SOURCE_DIR/tests/lib.sh"
need_kafka
topics
start_sim
write_config "$work/config.json" '{"routing": {"default_online_outlet": null}}'
state="tillstream.redrive.$sfx"
python3 - >"$work/c.kv" <<'PY'
import json
for i in range(3):
    print(f"N{i}\t" + json.dumps({"customer_id": f"N{i}", "email": f"n{i}@example.com", "home_outlet_id": None}))
for i in range(4):
    print(f"U{i}\t" + json.dumps({"customer_id": f"U{i}", "email": f"u{i}@example.com", "home_outlet_id": "999"}))
print("P0\t" + json.dumps({"customer_id": "P0", "home_outlet_id": "101"}))   # NO_PROFILE_IDENTIFIER
PY
kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/c.kv"
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >/dev/null
dlq() { "$bin/tillstream-dlq" redrive --config "$work/config.json" --state-topic "$state" "$@"; }
# the keys a run redrove (or would): its "redrive to" lines; a dead letter
# written twice for one source record (at-least-once) is a "copy" line
keys() { grep -E '^(would redrive to|redrive  to) ' "$1" | grep -o 'key [A-Z0-9]*' | sort | tr '\n' ' '; }
want_keys() { # want_keys FILE "key A key B ": else the run's output and exit 1
  [ "$(keys "$1")" = "$2" ] || { echo "redrove '$(keys "$1")', want '$2':" >&2; cat "$1" >&2; exit 1; }
}

dlq --reason UNMAPPED_OUTLET >"$work/u1.txt"
grep -q '^4 record(s) redriven' "$work/u1.txt" || { cat "$work/u1.txt" >&2; exit 1; }
want_keys "$work/u1.txt" "key U0 key U1 key U2 key U3 "
dlq --reason NO_HOME_OUTLET --dry-run >"$work/n0.txt"
grep -q '^dry run: 3 record(s) would be redriven' "$work/n0.txt" || { cat "$work/n0.txt" >&2; exit 1; }
dlq --reason NO_HOME_OUTLET >"$work/n1.txt"
grep -q '^3 record(s) redriven' "$work/n1.txt" || { cat "$work/n1.txt" >&2; exit 1; }
want_keys "$work/n1.txt" "key N0 key N1 key N2 "
for r in UNMAPPED_OUTLET NO_HOME_OUTLET; do
  dlq --reason "$r" >"$work/again.txt"
  grep -q '^0 record(s) redriven' "$work/again.txt" || { echo "repeat $r:" >&2; cat "$work/again.txt" >&2; exit 1; }
done
# the one left: NO_PROFILE_IDENTIFIER, untouched by the filtered redrives
dlq --dry-run >"$work/rest.txt"
grep -q '^dry run: 1 record(s) would be redriven' "$work/rest.txt" && grep -q 'key P0 (NO_PROFILE_IDENTIFIER' "$work/rest.txt" ||
  { cat "$work/rest.txt" >&2; exit 1; }
# each redriven record reached the source topic once
redriven=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "pos.customers.$sfx" -e -q -f '%k %h\n' | grep -c 'tillstream.redrive.count=1' || true)
[ "$redriven" = 7 ] || { echo "source topic got $redriven redriven records, want 7" >&2; exit 1; }
# the bookkeeping: one record per dead letter done, in a compacted topic
done_n=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "$state" -e -q -f '%k\n' | grep -c "|pos.deadletter.$sfx|" || true)
dl_n=$(kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "pos.deadletter.$sfx" -e -q -f '%h\n' | grep -Evc 'tillstream.reason=NO_PROFILE_IDENTIFIER' || true)
[ "$dl_n" -ge 7 ] && [ "$done_n" = "$dl_n" ] ||
  { echo "bookkeeping has $done_n records for $dl_n redriven dead letters (7 source records), want one each" >&2; exit 1; }
# an upgrade: a group that redrove with an older tillstream-dlq remembered its
# progress in committed offsets (here committed by kcat); below them is done
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >/dev/null   # the 7 fail again
timeout 60 kcat -b "$TS_KAFKA_BOOTSTRAP" -G "legacy-$sfx" -X auto.offset.reset=earliest -e -q "pos.deadletter.$sfx" >/dev/null ||
  { echo "kcat could not commit the legacy group's offsets" >&2; exit 1; }
printf 'N9\t{"customer_id":"N9","email":"n9@example.com","home_outlet_id":null}\n' |
  kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t'
timeout 120 "$bin/tillstream-customers" --config "$work/config.json" --exit-at-end >/dev/null
dlq --group "legacy-$sfx" --dry-run >"$work/legacy.txt"
grep -q '^dry run: 1 record(s) would be redriven' "$work/legacy.txt" || { cat "$work/legacy.txt" >&2; exit 1; }
want_keys "$work/legacy.txt" "key N9 "
echo "dlq: --reason UNMAPPED_OUTLET (4) then --reason NO_HOME_OUTLET (3) each redrove their own, repeats no-ops, NO_PROFILE_IDENTIFIER untouched, 7 bookkeeping records; an old group's committed offsets honoured"
