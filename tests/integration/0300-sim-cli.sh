#!/usr/bin/env bash
# The Klaviyo simulator as a process, driven with curl:
# - --listen 127.0.0.1:0 prints the bound port and writes it to --port-file;
# - keys from an env var and from a file; 401 without / with a wrong key,
#   400 without or with a malformed revision, 415 for a non-JSON body;
# - 202 for a valid bulk, the repeat across requests kept once, a repeated
#   unique_id within one request -> 400 and nothing recorded;
# - Create Event / profile import (201 new, 200 again) / bulk import job doc;
# - the rate limit set by --limit answers 429 with Retry-After;
# - /__sim/ inspection and --dump-bodies file names; the key is never logged;
# - --drop-rate 1 closes connections without an answer;
# - SIGTERM stops it with exit code 0.
. "$TS_SOURCE_DIR/tests/lib.sh"
sim="$bin/tillstream-klaviyo-sim"
export SIM_KEY_A=pk_cli_secret_a
printf 'pk_cli_secret_b\n' >"$work/key_b"
mkdir "$work/dump"
"$sim" --listen 127.0.0.1:0 --port-file "$work/port" --account brand-a=SIM_KEY_A \
  --account-key-file "brand-b=$work/key_b" --limit create_event=50/s,2/m \
  --dump-bodies "$work/dump" --log-level debug >"$work/out" 2>"$work/err" &
pid=$!
pids+=("$pid")
wait_file "$work/port"
port=$(cat "$work/port")
grep -qx "listening on http://127.0.0.1:$port" "$work/out"
base="http://127.0.0.1:$port"

# call KEY REVISION CTYPE PATH BODY -> prints the status; body in $work/body, headers in $work/hdr
call() {
  local args=(-sS -o "$work/body" -D "$work/hdr" -w '%{http_code}' -X POST "$base$4" --data-binary "$5")
  [ -n "$1" ] && args+=(-H "Authorization: Klaviyo-API-Key $1")
  [ -n "$2" ] && args+=(-H "revision: $2")
  args+=(-H "Content-Type: $3")
  curl "${args[@]}"
}
J=application/vnd.api+json R=2026-07-15
events() { # events UID1 [UID2]: one profile, one Placed Order per unique_id
  local evs="" u
  for u in "$@"; do
    evs+="${evs:+,}{\"type\":\"event\",\"attributes\":{\"properties\":{\"k\":1},\"value\":9.5,\"unique_id\":\"$u\",\"metric\":{\"data\":{\"type\":\"metric\",\"attributes\":{\"name\":\"Placed Order\"}}}}}"
  done
  printf '{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"cli@example.com"}}},"events":{"data":[%s]}}}]}}}}' "$evs"
}
expect() { # expect WANT GOT WHAT
  if [ "$1" != "$2" ]; then echo "FAIL $3: want $1, got $2" >&2; cat "$work/body" >&2; exit 1; fi
}

expect 401 "$(call "" $R $J /api/event-bulk-create-jobs "$(events a1)")" "no key"
expect 401 "$(call pk_wrong $R $J /api/event-bulk-create-jobs "$(events a1)")" "wrong key"
grep -q '"not_authenticated"' "$work/body"
expect 400 "$(call "$SIM_KEY_A" "" $J /api/event-bulk-create-jobs "$(events a1)")" "no revision"
expect 400 "$(call "$SIM_KEY_A" july $J /api/event-bulk-create-jobs "$(events a1)")" "bad revision"
expect 415 "$(call "$SIM_KEY_A" $R text/plain /api/event-bulk-create-jobs "$(events a1)")" "content type"
expect 400 "$(call "$SIM_KEY_A" $R $J /api/event-bulk-create-jobs "$(events d1 d1)")" "dup within"
python3 - "$work/body" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["errors"][0]
assert e["status"] == 400 and e["code"] == "invalid" and e["id"], e
assert e["source"]["pointer"] == "/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/unique_id", e
PY
expect 202 "$(call "$SIM_KEY_A" $R $J /api/event-bulk-create-jobs "$(events a1 a2)")" "bulk"
[ ! -s "$work/body" ]
grep -qi '^RateLimit-Limit: 150' "$work/hdr"
grep -qi '^RateLimit-Remaining: ' "$work/hdr"
grep -qi '^RateLimit-Reset: ' "$work/hdr"
expect 202 "$(call "pk_cli_secret_b" $R $J /api/event-bulk-create-jobs "$(events a2 a3)")" "bulk b"
expect 202 "$(call "$SIM_KEY_A" $R $J /api/event-bulk-create-jobs "$(events a2 a3)")" "bulk again"

one='{"data":{"type":"event","attributes":{"properties":{},"unique_id":"s1","metric":{"data":{"type":"metric","attributes":{"name":"Viewed"}}},"profile":{"data":{"type":"profile","attributes":{"phone_number":"+64211234567"}}}}}}'
expect 202 "$(call "$SIM_KEY_A" $R $J /api/events "$one")" "create event"
expect 202 "$(call "$SIM_KEY_A" $R $J /api/events "$one")" "create event again"
expect 429 "$(call "$SIM_KEY_A" $R $J /api/events "$one")" "create event throttled"
grep -qiE '^Retry-After: [0-9]+' "$work/hdr"
grep -q '"throttled"' "$work/body"

prof='{"data":{"type":"profile","attributes":{"email":"p@example.com","first_name":"P"}}}'
expect 201 "$(call "$SIM_KEY_A" $R $J /api/profile-import "$prof")" "profile new"
expect 200 "$(call "$SIM_KEY_A" $R $J /api/profile-import "$prof")" "profile again"
bulkp='{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"external_id":"C1"}},{"type":"profile","attributes":{"email":"p@example.com"}}]}}}}'
expect 202 "$(call "$SIM_KEY_A" $R $J /api/profile-bulk-import-jobs "$bulkp")" "bulk import"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; assert d["type"]=="profile-bulk-import-job" and d["attributes"]["status"]=="queued" and d["attributes"]["total_count"]==2, d' "$work/body"

curl -fsS "$base/__sim/stats" >"$work/stats.json"
curl -fsS "$base/__sim/accounts/brand-a/events" >"$work/a.events"
curl -fsS "$base/__sim/accounts/brand-a/profiles" >"$work/a.profiles"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
st = json.load(open(f"{w}/stats.json"))
a, b = st["accounts"]["brand-a"], st["accounts"]["brand-b"]
assert st["unauthorized"] == 2, st
assert a["events_recorded"] == 4 and a["duplicates_ignored"] == 2, a   # a1 a2 a3 s1; a2 again, s1 again
assert a["events_by_metric"] == {"Placed Order": 3, "Viewed": 1}, a
assert a["profiles"] == 2 and a["throttled"] == 1, a
r = a["requests"]
assert r["202"] == 5 and r["400"] == 3 and r["415"] == 1 and r["429"] == 1 and r["201"] == 1 and r["200"] == 1, r
assert b["events_recorded"] == 2 and b["duplicates_ignored"] == 0, b
ev = [json.loads(l) for l in open(f"{w}/a.events")]
assert sorted(e["unique_id"] for e in ev) == ["a1", "a2", "a3", "s1"], ev
e = next(e for e in ev if e["unique_id"] == "a1")
assert e["metric"] == "Placed Order" and e["value"] == 9.5 and e["profile"] == {"email": "cli@example.com"}, e
assert e["profile_key"] == "e:cli@example.com" and e["backfill"] is False and e["properties"] == {"k": 1}, e
assert next(e for e in ev if e["unique_id"] == "s1")["profile"]["phone_number"] == "+64211234567"
pr = [json.loads(l) for l in open(f"{w}/a.profiles")]
assert {p.get("external_id") or p.get("email") for p in pr} == {"C1", "p@example.com"}, pr
PY
ls "$work/dump" >"$work/dump.ls"
[ "$(grep -c '^bulk_create_events-.*\.json$' "$work/dump.ls")" = 3 ]
[ "$(grep -c '^create_event-' "$work/dump.ls")" = 2 ]
[ "$(grep -c '^create_or_update_profile-' "$work/dump.ls")" = 2 ]
[ "$(grep -c '^bulk_import_profiles-' "$work/dump.ls")" = 1 ]
curl -fsS -X POST "$base/__sim/reset" >/dev/null
[ "$(curl -fsS "$base/__sim/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accounts"]["brand-a"]["events_recorded"])')" = 0 ]

grep -q '"level":"debug"' "$work/err"                 # JSON-lines logs, rejections at debug
if grep -q 'pk_cli_secret' "$work/out" "$work/err"; then echo "FAIL: API key logged" >&2; exit 1; fi

kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
expect 0 "$rc" "exit code after SIGTERM"

# --drop-rate 1: every request gets its connection closed, nothing recorded
"$sim" --port-file "$work/port2" --account brand-a=SIM_KEY_A --drop-rate 1 --seed 7 >/dev/null 2>&1 &
pid2=$!
pids+=("$pid2")
wait_file "$work/port2"
base="http://127.0.0.1:$(cat "$work/port2")"
rc=0; call "$SIM_KEY_A" $R $J /api/event-bulk-create-jobs "$(events a1)" >/dev/null 2>&1 || rc=$?
expect 52 "$rc" "curl exit code for an empty reply"
[ "$(curl -fsS "$base/__sim/stats" | python3 -c 'import json,sys; a=json.load(sys.stdin)["accounts"]["brand-a"]; print(a["dropped"], a["events_recorded"])')" = "1 0" ]
kill -INT "$pid2"
rc=0; wait "$pid2" || rc=$?
expect 0 "$rc" "exit code after SIGINT"
echo ok
