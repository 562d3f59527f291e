# bench/lib/common.sh - shared helpers of the end-to-end benchmarks (sourced).
# Each benchmark starts what it needs and stops it on exit: a real Kafka
# broker (scripts/kafka.sh, or the one in $BENCH_KAFKA_DIR if set and
# running: then it is left running), the Klaviyo simulator, the recording
# proxy (bench/lib/recproxy.py), the tools under test. API keys are pk_<account>.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${TS_BUILD_DIR:-$root/build}
export TS_CACHE=${TS_CACHE:-$HOME/.cache/tillstream}
export PYTHONDONTWRITEBYTECODE=1   # bench/lib/*.py are imported: no __pycache__ in the tree
venv=$TS_CACHE/venv
peers=${BENCH_PEERS:-$root/../shared/peers}
[ -d "$peers" ] || peers=/work/shared/peers
work=$(mktemp -d "${TMPDIR:-/tmp}/ts-bench.XXXXXX")
sfx="$(date +%s)$$"
bench_pids=()
own_broker=0
kdir=
bench_cleanup() {
  local p
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$own_broker" = 1 ]; then "$root/scripts/kafka.sh" stop "$kdir" >/dev/null 2>&1 || true; rm -rf "$kdir"; fi
  [ "${BENCH_KEEP:-0}" = 1 ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# bench_args USAGE SPEC... -- ARGS...: the benchmark's options. SPEC is
# pairs: "--opt VAR" (VAR=the next argument) or "--flag VAR=VALUE". Any
# other argument, or an option without its value: "usage: $0 USAGE", exit 2.
bench_args() {
  local usage=$1 spec=() i
  shift
  while [ "$1" != -- ]; do spec+=("$1" "$2"); shift 2; done
  shift
  while [ $# -gt 0 ]; do
    for ((i = 0; i < ${#spec[@]}; i += 2)); do [ "${spec[i]}" = "$1" ] && break; done
    if [ $i -ge ${#spec[@]} ] || { [ "${spec[i + 1]}" = "${spec[i + 1]%%=*}" ] && [ $# -lt 2 ]; }; then
      echo "usage: $0 $usage" >&2; exit 2
    fi
    case ${spec[i + 1]} in
      *=*) printf -v "${spec[i + 1]%%=*}" '%s' "${spec[i + 1]#*=}"; shift ;;
      *) printf -v "${spec[i + 1]}" '%s' "$2"; shift 2 ;;
    esac
  done
}

need_bins() {
  local b
  for b in "$@"; do [ -x "$bin/$b" ] || { echo "bench: $bin/$b missing (build first)" >&2; exit 1; }; done
}

need_gnu_time() {
  [ -x /usr/bin/time ] || { echo "bench: GNU time (/usr/bin/time, Debian package 'time') is required" >&2; exit 1; }
}

gen_volume() { # gen_volume CUSTOMERS ORDERS SEED: gen_volume.py into $work/data, plus customers.kv and orders.kv ("id<TAB>json" lines for kcat -K)
  log "generating $2 orders, $1 customers (gen_volume.py)"
  python3 "$peers/gen_volume.py" "$work/data" "$1" "$2" "$3"
  python3 - "$work/data" <<'PY'
import json, sys
d = sys.argv[1]
for name, key in (("customers", "customer_id"), ("orders", "order_id")):
    with open(f"{d}/{name}.kv", "w") as out:
        for ln in open(f"{d}/{name}.jsonl"):
            out.write(f"{json.loads(ln)[key]}\t{ln.strip()}\n")
PY
}

broker() { # starts (or reuses) a broker; sets $bs and $kdir
  if [ -n "${BENCH_KAFKA_DIR:-}" ] && [ -s "$BENCH_KAFKA_DIR/bootstrap" ]; then
    kdir=$BENCH_KAFKA_DIR
  else
    kdir=/tmp/kafka-bench-$$
    own_broker=1
    log "starting a Kafka broker in $kdir"
    "$root/scripts/kafka.sh" start "$kdir" >"$work/kafka-start.log" 2>&1 || { cat "$work/kafka-start.log" >&2; exit 1; }
  fi
  bs=$(cat "$kdir/bootstrap")
}

topic() { "$root/scripts/kafka.sh" topic "$kdir" "$@" >/dev/null; }

wait_file() { # wait_file PATH [tenths]
  local i
  for i in $(seq 1 "${2:-200}"); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "bench: timeout waiting for $1" >&2; return 1
}

sim_start() { # sim_start NAME ACCOUNTS(space-separated) [sim flags...]; sets ${NAME}_port
  local name=$1 accts=$2 a args=()
  shift 2
  for a in $accts; do
    local var="BENCH_KEY_${a//-/_}"
    export "$var=pk_$a"
    args+=(--account "$a=$var")
  done
  "$bin/tillstream-klaviyo-sim" --port-file "$work/$name.port" "${args[@]}" "$@" >/dev/null 2>"$work/$name.log" &
  bench_pids+=($!)
  wait_file "$work/$name.port"
  printf -v "${name}_port" '%s' "$(cat "$work/$name.port")"
}

proxy_start() { # proxy_start NAME UPSTREAM_PORT [--ids FILE]; sets ${NAME}_port and ${NAME}_pid, log in $work/NAME.req
  local name=$1 up=$2
  shift 2
  python3 "$root/bench/lib/recproxy.py" "$up" "$work/$name.port" "$work/$name.req" "$@" 2>"$work/$name.log" &
  bench_pids+=($!)
  printf -v "${name}_pid" '%s' "$!"
  wait_file "$work/$name.port"
  printf -v "${name}_port" '%s' "$(cat "$work/$name.port")"
}

run_or_die() { # run_or_die LOG CMD...: runs CMD; on failure shows LOG's tail and exits
  local lg=$1; shift
  "$@" || { echo "bench: failed ($?): $*" >&2; tail -5 "$lg" >&2; exit 1; }
}

stop_pid() { # stop_pid PID: SIGTERM and wait
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

sim_stats() { curl -fsS "http://127.0.0.1:$1/__sim/stats"; }

# write_config FILE SIM_PORT "acct:outlet,outlet acct:outlet ..." [JSON of section updates] [JSON merged into each account]
# tillstream config on the sample's shape: topics bench.*.$sfx, keys from
# BENCH_KEY_<account> (= pk_<account>), admin on a free port.
write_config() {
  python3 - "$root/samples/config.sandbox.json" "$1" "$bs" "$2" "$sfx" "$3" "${4:-{\}}" "${5:-{\}}" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
bs, port, sfx = sys.argv[3], sys.argv[4], sys.argv[5]
c["kafka"] = {"bootstrap.servers": bs}
c["topics"] = {"customers": f"bench.customers.{sfx}", "orders": f"bench.orders.{sfx}", "dead_letter": f"bench.deadletter.{sfx}"}
c["klaviyo"]["base_url"] = f"http://127.0.0.1:{port}"
c["accounts"] = []
for spec in sys.argv[6].split():
    name, outlets = spec.split(":")
    c["accounts"].append({"name": name, "api_key_env": "BENCH_KEY_" + name.replace("-", "_"), "outlets": outlets.split(","), **json.loads(sys.argv[8])})
c["consumer"] = {"group_id_customers": f"bench-customers-{sfx}", "group_id_orders": f"bench-orders-{sfx}",
                 "shutdown_grace_ms": 10000, "unknown_customer_retry_ms": 2000}
c["admin"] = {"listen": "127.0.0.1:0"}
for k, v in json.loads(sys.argv[7]).items():
    if isinstance(v, dict): c.setdefault(k, {}).update(v)
    else: c[k] = v
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
}

rss_sampler() { # rss_sampler PID OUT: "t_ms rss_kib" every second while PID lives (background)
  ( while [ -d "/proc/$1" ]; do
      r=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null) || break
      [ -n "$r" ] && echo "$(date +%s%3N) $r"
      sleep 1
    done ) >"$2" &
  bench_pids+=($!)
}

venv_peer_deps() { # the Python peer's packages, in the project's venv (not a test dependency)
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c 'import confluent_kafka, requests' 2>/dev/null ||
    "$venv/bin/pip" install -q confluent-kafka requests >&2
}

machine() { lscpu | sed -n 's/^Model name: *//p' | head -1; }
