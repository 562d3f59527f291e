#!/usr/bin/env bash
# tillstream-dlq fails safe without a broker (issue 17):
# - usage errors exit 2 before anything is read: an unknown --reason (the
#   message lists the valid ones), an option the command does not take
#   (stats --reason, show --dry-run, redrive --json, tail --limit 0, ...), an
#   unknown command, --until before --since;
# - an unreachable cluster is a clear JSON error line on stderr and exit 1,
#   with no report on stdout (no "total":0) and no raw librdkafka %3| lines.
set -euo pipefail
bin=$TS_BIN_DIR
work=$(mktemp -d "${TMPDIR:-/tmp}/ts-dlq.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 - "$TS_SOURCE_DIR/samples/config.sandbox.json" "$work/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["kafka"] = {"bootstrap.servers": "127.0.0.1:1"}   # nothing listens there
json.dump(c, open(sys.argv[2], "w"))
PY
export KLAVIYO_KEY_BRAND_A=x KLAVIYO_KEY_BRAND_B=x KLAVIYO_KEY_BRAND_C=x
usage_error() { # usage_error PATTERN ARGS...: exit 2, PATTERN on stderr, nothing on stdout
  local pat=$1 rc=0; shift
  "$bin/tillstream-dlq" "$@" >"$work/out" 2>"$work/err" || rc=$?
  [ "$rc" = 2 ] || { echo "tillstream-dlq $*: exit $rc, want 2" >&2; cat "$work/err" >&2; exit 1; }
  grep -q -- "$pat" "$work/err" || { echo "tillstream-dlq $*: no '$pat' in:" >&2; cat "$work/err" >&2; exit 1; }
  [ ! -s "$work/out" ] || { echo "tillstream-dlq $*: printed a report" >&2; exit 1; }
}
c=(--config "$work/config.json")
usage_error 'unknown reason; valid reasons: NO_HOME_OUTLET UNMAPPED_OUTLET NO_PROFILE_IDENTIFIER UNKNOWN_CUSTOMER DECODE_ERROR SCHEMA_NOT_FOUND KLAVIYO_REJECTED PAYLOAD_TOO_LARGE' show "${c[@]}" --reason NOPE
usage_error 'unknown reason' redrive "${c[@]}" --reason no_home_outlet
usage_error 'stats does not take --reason' stats "${c[@]}" --reason NO_HOME_OUTLET
usage_error 'stats does not take --limit' stats "${c[@]}" --limit 5
usage_error 'show does not take --dry-run' show "${c[@]}" --dry-run
usage_error 'show does not take --from-beginning' show "${c[@]}" --from-beginning
usage_error 'redrive does not take --json' redrive "${c[@]}" --json
usage_error 'audit does not take --outlet' audit "${c[@]}" --outlet 101
usage_error 'tail does not take --group' tail "${c[@]}" --group g
usage_error '--limit 0: expected a positive integer' show "${c[@]}" --limit 0
usage_error '--limit x: expected a positive integer' redrive "${c[@]}" --limit x
usage_error '--max-redrives -1' redrive "${c[@]}" --max-redrives -1
usage_error '--until must be later than --since' show "${c[@]}" --since 2026-11-02T00:00:00Z --until 2026-11-01T00:00:00Z
usage_error '--since' show "${c[@]}" --since yesterday
usage_error "unknown command 'stat'" stat "${c[@]}"
usage_error "unexpected argument 'extra'" stats "${c[@]}" extra
usage_error '--config FILE is required' stats

# the broker is unreachable: stats and redrive (in parallel: each waits 10 s)
"$bin/tillstream-dlq" stats "${c[@]}" --json >"$work/s.out" 2>"$work/s.err" & p1=$!
"$bin/tillstream-dlq" redrive "${c[@]}" --dry-run >"$work/r.out" 2>"$work/r.err" & p2=$!
rc1=0 rc2=0
wait $p1 || rc1=$?
wait $p2 || rc2=$?
for x in s r; do
  rc=$([ $x = s ] && echo $rc1 || echo $rc2)
  [ "$rc" = 1 ] || { echo "$x: exit $rc with the broker down, want 1" >&2; cat "$work/$x.err" >&2; exit 1; }
  [ ! -s "$work/$x.out" ] || { echo "$x: printed a report with the broker down:" >&2; cat "$work/$x.out" >&2; exit 1; }
  python3 - "$work/$x.err" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
recs = [json.loads(l) for l in lines]          # every line is a JSON log line
msgs = [r for r in recs if r["logger"] == "dlq" and r["level"] == "error"]
assert any("cannot reach the Kafka cluster" in r["message"] and r.get("bootstrap_servers") == "127.0.0.1:1"
           for r in msgs), recs
assert not any(l.startswith("%") for l in lines), lines
PY
done
echo "dlq: 17 usage errors exit 2 without a report; broker down: JSON error, exit 1, no report"
