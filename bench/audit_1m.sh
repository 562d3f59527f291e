#!/usr/bin/env bash
# bench/audit_1m.sh BROKER_DIR [N] - the Home Outlet audit on a generated
# customers topic of N (default 1,000,000) customers, on a running broker
# started with scripts/kafka.sh; checks the audit against the generator's
# ground truth and prints the audit's run time.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$1 n=${2:-1000000}
bin=${TS_BUILD_DIR:-$here/build}
bs=$(cat "$dir/bootstrap") sfx=$(date +%s)
"$here/scripts/kafka.sh" topic "$dir" "audit.customers.$sfx" 6 compact
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$bin/tillstream-gen" --customers "$n" --orders 0 --seed 99 --keys --out-customers "$work/c.kv" --counts >"$work/truth.json"
time kcat -b "$bs" -P -t "audit.customers.$sfx" -K $'\t' -X linger.ms=50 -X batch.num.messages=10000 -l "$work/c.kv"
python3 - "$here/samples/config.sandbox.json" "$work/cfg.json" "$bs" "$sfx" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["kafka"] = {"bootstrap.servers": sys.argv[3]}
c["topics"]["customers"] = "audit.customers." + sys.argv[4]
c["routing"]["default_online_outlet"] = None
json.dump(c, open(sys.argv[2], "w"))
PY
/usr/bin/time -v "$bin/tillstream-dlq" audit --config "$work/cfg.json" --json >"$work/audit.json" 2>"$work/time.txt"
grep -E 'Elapsed|Maximum resident' "$work/time.txt"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
t, a = json.load(open(w + "/truth.json")), json.load(open(w + "/audit.json"))
o = a["overall"]
pairs = [("customers", "customers"), ("no_home_outlet", "no_home_outlet"), ("unmapped_outlet", "unmapped_outlet"),
         ("no_email_or_phone", "no_identifier"), ("email_subscribed", "email_subscribed"), ("sms_subscribed", "sms_subscribed")]
for mine, theirs in pairs:
    assert o[mine] == t[theirs], (mine, o[mine], t[theirs])
print("audit of %d customers: counts equal the generator's; %.1f s by the tool's own clock" % (o["customers"], a["seconds"]))
PY
