# tests/lib.sh - shared helpers for the integration tests (sourced).
# The test command (scripts/test.sh) starts one real Kafka broker and
# exports TS_KAFKA_BOOTSTRAP and TS_KAFKA_DIR. Each test uses topics and
# groups of its own (a random suffix), so tests never see each other's data.
set -euo pipefail
# a failing check names itself: the line and the command that ended the test
# (only while errexit is on: a `set +e` section's failures are expected)
set -E
trap '[[ $- == *e* && $BASH_SUBSHELL == 0 ]] && echo "FAILED at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR
bin=$TS_BIN_DIR src=$TS_SOURCE_DIR

need_kafka() {
  if [ -z "${TS_KAFKA_BOOTSTRAP:-}" ]; then
    if [ "${CI:-}" = true ]; then echo "TS_KAFKA_BOOTSTRAP is not set in CI" >&2; exit 1; fi
    echo "skipped: no Kafka broker (run through scripts/test.sh)" >&2; exit 77
  fi
}

work=$(mktemp -d "${TMPDIR:-/tmp}/ts-it.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
sfx="$(date +%s)$$"

topics() { # creates pos.customers.$sfx (compacted), pos.orders.$sfx, pos.deadletter.$sfx
  "$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.customers.$sfx" 3 compact
  "$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.orders.$sfx" 3
  "$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.deadletter.$sfx" 1
  suppressions_topic
}

suppressions_topic() { # pos.klaviyo.suppressions.$sfx (write_config's topics.suppressions):
  # tillstream-customers will not start without it (customers.wait_for_suppressions)
  "$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "pos.klaviyo.suppressions.$sfx" 1
  suppressions_passed
}

suppressions_passed() { # suppressions_passed [ACCOUNT...] (default: the simulator's three):
  # the record tillstream-suppressions commits to topics.suppressions_state
  # (write_config's it.suppressions.state.$sfx) after its first full
  # pass over an account; without it tillstream-customers waits (issue 15)
  local state="it.suppressions.state.$sfx" now a
  "$src/scripts/kafka.sh" topic "$TS_KAFKA_DIR" "$state" 1 compact
  now=$(python3 -c 'import time; print(int(time.time()*1000))')
  [ $# -gt 0 ] || set -- brand-a brand-b brand-c
  for a in "$@"; do printf '%s\t{"v":1,"pass_at":%s}\n' "$a" "$now"; done |
    kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "$state" -K $'\t'
}

wait_for() { # wait_for SECONDS WHAT 'CONDITION': until the shell condition holds (evaluated
  # each time), or fail naming WHAT and showing the tail of $wait_log (when set)
  local deadline=$((SECONDS + $1)) what=$2 cond=$3
  until eval "$cond"; do
    [ $SECONDS -lt $deadline ] || {
      echo "timed out waiting for $what" >&2
      [ -z "${wait_log:-}" ] || tail -n 5 "$wait_log" >&2
      exit 1
    }
    sleep 0.2
  done
}

start_live() { # start_live BINARY LOG [ARGS...]: BINARY --config $work/config.json in the
  # background, logging to LOG; sets $c (its pid) and $port (its admin port, once it listens)
  local b=$1 lg=$2; shift 2
  "$bin/$b" --config "$work/config.json" "$@" >"$lg" 2>&1 & c=$!; pids+=($c)
  wait_log=$lg wait_for 30 "the admin port of $b" "grep -q '\"port\":' '$lg'"
  port=$(grep -o '"port":[0-9]*' "$lg" | head -n 1 | cut -d: -f2)
}

wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "timeout waiting for $1" >&2; return 1; }

start_sim() { # start_sim [extra sim flags...]; sets $sim_port and $sim (its base URL)
  export KLAVIYO_KEY_BRAND_A=pk_it_a KLAVIYO_KEY_BRAND_B=pk_it_b KLAVIYO_KEY_BRAND_C=pk_it_c
  "$bin/tillstream-klaviyo-sim" --port-file "$work/sim.port" --account brand-a=KLAVIYO_KEY_BRAND_A \
      --account brand-b=KLAVIYO_KEY_BRAND_B --account brand-c=KLAVIYO_KEY_BRAND_C "$@" >/dev/null 2>"$work/sim.log" &
  pids+=($!)
  wait_file "$work/sim.port"
  sim_port=$(cat "$work/sim.port")
  sim="http://127.0.0.1:$sim_port"
}

sim_counts() { # sim_counts ACCOUNT|all FIELD... -> the FIELDs of ACCOUNT in the simulator's
  # /__sim/stats (all: each summed over the accounts), on one line, space-separated
  curl -fsS "$sim/__sim/stats" | python3 -c '
import json, sys
accounts = json.load(sys.stdin)["accounts"]
of = accounts.values() if sys.argv[1] == "all" else [accounts[sys.argv[1]]]
print(*(sum(a[f] for a in of) for f in sys.argv[2:]))' "$@"
}

registry_start() { # a schema registry of this test's own (scripts/registry.sh) in $work/registry,
  # destroyed on exit; sets $reg and $url
  reg="$work/registry"
  trap '"$src/scripts/registry.sh" destroy "$reg" >/dev/null 2>&1 || true; cleanup' EXIT
  url=$("$src/scripts/registry.sh" start "$reg" "$TS_KAFKA_BOOTSTRAP")
}

write_config() { # write_config FILE [python dict updates as JSON]
  python3 - "$src/samples/config.sandbox.json" "$1" "$TS_KAFKA_BOOTSTRAP" "$sim_port" "$sfx" "${2:-{\}}" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
bs, port, sfx = sys.argv[3], sys.argv[4], sys.argv[5]
c["kafka"] = {"bootstrap.servers": bs}
c["topics"] = {"customers": f"pos.customers.{sfx}", "orders": f"pos.orders.{sfx}", "dead_letter": f"pos.deadletter.{sfx}",
               "suppressions": f"pos.klaviyo.suppressions.{sfx}",
               "suppressions_state": f"it.suppressions.state.{sfx}",
               "customers_state": f"tillstream.customers.state.{sfx}"}  # created by the consumer
c["klaviyo"]["base_url"] = f"http://127.0.0.1:{port}"
c["klaviyo"]["linger_ms"] = 50
c["consumer"] = {"group_id_customers": f"it-customers-{sfx}", "group_id_orders": f"it-orders-{sfx}",
                 "shutdown_grace_ms": 10000, "unknown_customer_retry_ms": 1500}
c["admin"] = {"listen": ""}
for k, v in json.loads(sys.argv[6]).items():
    c.setdefault(k, {}).update(v)
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
}

produce_samples() { # key<TAB>value lines from the sample JSON files
  python3 - "$src/samples" "$work" <<'PY'
import json, sys
for name, key in (("customers", "customer_id"), ("orders", "order_id")):
    with open(f"{sys.argv[2]}/{name}.kv", "w") as out:
        for line in open(f"{sys.argv[1]}/{name}.jsonl"):
            if line.strip():
                out.write(f"{json.loads(line)[key]}\t{line.strip()}\n")
PY
  kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.customers.$sfx" -K $'\t' -l "$work/customers.kv"
  kcat -b "$TS_KAFKA_BOOTSTRAP" -P -t "pos.orders.$sfx" -K $'\t' -l "$work/orders.kv"
}

orders_kv() { # orders_kv FILE ID-PREFIX FIRST COUNT CUSTOMERS: COUNT completed orders of 10 AUD
  # (ids <ID-PREFIX><n>, n from FIRST), customer Q<n % CUSTOMERS> embedded (outlets 101, 201,
  # 301 in turn), as key<TAB>JSON lines in FILE
  python3 - "$@" <<'PY'
import json, sys
path, prefix, (first, count, customers) = sys.argv[1], sys.argv[2], map(int, sys.argv[3:6])
line = {"line_id": "1", "quantity": 1, "row_total": "10"}
with open(path, "w") as out:
    for n in range(first, first + count):
        q = n % customers
        o = dict(order_id=f"{prefix}{n}", customer_id=f"Q{q}", status="completed",
                 occurred_at="2026-11-01T10:00:00Z", currency="AUD", total="10", lines=[line],
                 customer={"email": f"q{q}@example.com", "home_outlet_id": ("101", "201", "301")[n % 3]})
        out.write(f"{prefix}{n}\t{json.dumps(o)}\n")
PY
}

consent_kv() { # consent_kv FILE ROUNDS OPT-OUT [CITY]: customers C0000..C0999 (outlet 101)
  # round by round, as key<TAB>JSON lines in FILE: ROUNDS and OPT-OUT are ranges FROM-TO (TO
  # excluded); round r is at 1790000000000 + r x 60 s, billing address "<r> George St"
  # [CITY]; email consent true but for C0000..C0099 in the rounds of OPT-OUT
  python3 - "$@" <<'PY'
import json, sys
path, (r0, r1), (o0, o1) = sys.argv[1], *(map(int, a.split("-")) for a in sys.argv[2:4])
city = {"city": sys.argv[4]} if len(sys.argv) > 4 else {}
with open(path, "w") as out:
    for r in range(r0, r1):
        for i in range(1000):
            c = {"customer_id": f"C{i:04d}", "email": f"c{i:04d}@example.com", "home_outlet_id": "101",
                 "email_consent": not (i < 100 and o0 <= r < o1), "updated_at": 1790000000000 + r * 60000,
                 "billing_address": {"line1": f"{r} George St", **city}}
            out.write(f"C{i:04d}\t{json.dumps(c)}\n")
PY
}

read_dlq() { # one JSON object per dead letter: key, value, headers
  kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "pos.deadletter.$sfx" -e -q -J 2>/dev/null || true
}

metric() { # metric PORT NAME -> the sum of NAME's samples on an admin endpoint
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($0, m) == 1 {s += $NF} END {print s + 0}'
}

register_schema() { # register_schema URL SUBJECT AVSC [curl options...] -> the schema id
  local url=$1 subject=$2 avsc=$3; shift 3
  python3 -c 'import json,sys; print(json.dumps({"schema": open(sys.argv[1]).read()}))' "$avsc" |
    curl -fsS "$@" -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
      --data @- "$url/subjects/$subject/versions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

# registry_refused NAME CONFIG-UPDATES PATTERN HINT: the registry will not
# answer this customers consumer (wrong credentials, untrusted certificate):
# it must log PATTERN and HINT (the config key that fixes it), count its
# failed attempts, and neither dead-letter nor deliver anything. Log: $work/NAME.log
registry_refused() {
  write_config "$work/$1.json" "$2"
  "$bin/tillstream-customers" --config "$work/$1.json" >"$work/$1.log" 2>&1 &
  local p=$! n=0 port
  pids+=($p)
  for _ in $(seq 1 300); do grep -q "$3" "$work/$1.log" && break; sleep 0.1; done
  grep -q "$3" "$work/$1.log" || { echo "$1: no '$3' in the log" >&2; tail -5 "$work/$1.log" >&2; exit 1; }
  grep -q "$4" "$work/$1.log" || { echo "$1: the log does not name $4" >&2; exit 1; }
  echo "$1: $(grep -m1 "$3" "$work/$1.log")"
  port=$(grep -o '"port":[0-9]*' "$work/$1.log" | head -1 | cut -d: -f2)
  for _ in $(seq 1 100); do
    n=$(metric "$port" tillstream_registry_unavailable_total)
    [ "$n" -ge 2 ] && break; sleep 0.1
  done
  [ "$n" -ge 2 ] || { echo "$1: registry failures not counted: $n" >&2; exit 1; }
  kill -TERM "$p"; wait "$p"
  [ -z "$(read_dlq)" ] || { echo "$1: records dead-lettered while the registry refused" >&2; exit 1; }
  [ "$(curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" | python3 -c 'import json,sys; print(sum(a["profiles"] for a in json.load(sys.stdin)["accounts"].values()))')" = 0 ] ||
    { echo "$1: profiles delivered while the registry refused" >&2; exit 1; }
}

# delivered_as_dry_run CONFIG C.JSONL O.JSONL: runs both consumers to the end
# of their topics, then checks each account's events and the dead letters by
# reason against the dry run of the same records. The number of events
# delivered goes to $work/delivered.
delivered_as_dry_run() {
  timeout 120 "$bin/tillstream-customers" --config "$1" --exit-at-end >"$work/customers.log"
  timeout 120 "$bin/tillstream-orders" --config "$1" --exit-at-end >"$work/orders.log"
  "$bin/tillstream-customers" --config "$1" --dry-run --input "$2" >"$work/c.dry"
  "$bin/tillstream-orders" --config "$1" --dry-run --input "$3" --customers "$2" >"$work/o.dry"
  curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" >"$work/stats.json"
  read_dlq >"$work/dlq.json"
  python3 - "$work" <<'PY'
import json, sys, collections
w = sys.argv[1]
stats = json.load(open(w + "/stats.json"))["accounts"]
cdry = [json.loads(l) for l in open(w + "/c.dry")]
odry = [json.loads(l) for l in open(w + "/o.dry")]
for acct in ("brand-a", "brand-b", "brand-c"):
    want = sum(len(r["events"]) for r in odry if r["account"] == acct and not r["dead_letter"] and not r["skipped"])
    assert stats[acct]["events_recorded"] == want, (acct, stats[acct]["events_recorded"], want)
assert sum(s["profiles"] for s in stats.values()) > 0
dlq = [json.loads(l) for l in open(w + "/dlq.json", errors="replace") if l.strip()]
reasons = collections.Counter(dict(zip(r["headers"][0::2], r["headers"][1::2]))["tillstream.reason"] for r in dlq)
want = collections.Counter(r["dead_letter"]["reason"] for r in cdry + odry if r["dead_letter"])
assert reasons == want, (reasons, want)   # only what the data itself says
open(w + "/delivered", "w").write("%d\n" % sum(s["events_recorded"] for s in stats.values()))
PY
}
