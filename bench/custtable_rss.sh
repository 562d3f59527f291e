#!/usr/bin/env bash
# bench/custtable_rss.sh [--customers N] [--passes N] [--variant 'LABEL|ENV|KAFKA_JSON']...
#
# RSS of a running tillstream-orders after restoring an N-customer table
# (default 1,000,000; tillstream-gen --seed 99, 6-partition compacted topic)
# from a real broker, beside bench_custtable's in-process figure for the same
# N. For each variant the consumer starts on an empty orders topic, /readyz
# says the table is restored, then RSS is read once it is steady (3 equal
# seconds, at most 30 s): VmRSS and VmHWM from /proc. A variant is a label,
# environment assignments (space separated, may be empty) and a JSON object
# merged into the config's "kafka" section (librdkafka properties). When gdb is
# installed, the consumer is then asked to call malloc_trim(0) and RSS is read
# again: the difference is heap glibc kept after the restore's fetch buffers
# were freed. E.g.
#   --variant 'small fetch queue||{"queued.max.messages.kbytes":"8192"}'
# Without --variant: the default config (since the table reader trims the
# heap once restored, and fetches with a 16 MiB queue: table.c), --passes times
# (default 3) with a fresh process each, then checks every pass against the
# goal (<= 150 MB = 143.05 MiB steady RSS; exit 1 otherwise). The figure is the
# running process's; gdb's malloc_trim(0) afterwards shows what is left to trim.
. "$(dirname "$0")/lib/common.sh"
n=1000000 passes=3
variants=()
while [ $# -gt 0 ]; do
  case $1 in
    --customers) n=$2; shift 2 ;;
    --variant) variants+=("$2"); shift 2 ;;
    --passes) passes=$2; shift 2 ;;
    *) echo "usage: $0 [--customers N] [--passes N] [--variant 'LABEL|ENV|KAFKA_JSON']..." >&2; exit 2 ;;
  esac
done
if [ ${#variants[@]} -eq 0 ]; then
  for p in $(seq 1 "$passes"); do variants+=("default config, pass $p||{}"); done
fi
need_bins tillstream-orders tillstream-gen bench_custtable
export BENCH_KEY_brand_a=pk_brand-a BENCH_KEY_brand_b=pk_brand-b BENCH_KEY_brand_c=pk_brand-c  # no orders: never used
broker
topic "bench.customers.$sfx" 6 compact
topic "bench.orders.$sfx" 3
topic "bench.deadletter.$sfx" 1
log "producing $n customers"
run_or_die "$work/gen.log" "$bin/tillstream-gen" --customers "$n" --orders 0 --seed 99 --kafka "$bs" \
  --topic-customers "bench.customers.$sfx" --topic-orders "bench.orders.$sfx" 2>"$work/gen.log"
bct=$("$bin/bench_custtable" "$n" 2>&1 | tail -3 | tr '\n' ' ')

: >"$work/rows.txt"
i=0
for v in "${variants[@]}"; do
  i=$((i + 1))
  IFS='|' read -r label envs kj <<<"$v"
  write_config "$work/ts$i.json" 1 "brand-a:101,102 brand-b:201,202 brand-c:301" "{\"kafka\": ${kj:-{\}}}"
  log "variant $i: $label"
  t0=$(date +%s%3N)
  env $envs "$bin/tillstream-orders" --config "$work/ts$i.json" --group "bench-ct-$sfx-$i" >"$work/orders$i.log" 2>&1 &
  pid=$!
  bench_pids+=($pid)
  for _ in $(seq 1 300); do grep -q '"port":' "$work/orders$i.log" && break; sleep 0.1; done
  aport=$(grep -o '"port":[0-9]*' "$work/orders$i.log" | head -1 | cut -d: -f2)
  ready=0
  for _ in $(seq 1 1200); do
    curl -fsS "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1 && { ready=1; break; }
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  [ $ready = 1 ] || { echo "bench: variant $i never ready" >&2; tail -5 "$work/orders$i.log" >&2; exit 1; }
  t_ready=$(( $(date +%s%3N) - t0 ))
  prev=0 same=0
  for _ in $(seq 1 30); do
    r=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    [ "$r" = "$prev" ] && same=$((same + 1)) || same=0
    [ $same -ge 3 ] && break
    prev=$r; sleep 1
  done
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  # what the C library holds freed but not returned: ask it (gdb, when installed)
  trimmed=-
  if command -v gdb >/dev/null; then
    gdb -p "$pid" -batch -ex 'call (int)malloc_trim(0)' >"$work/gdb$i.log" 2>&1 && sleep 1 &&
      trimmed=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") || trimmed=-
  fi
  cust=$(curl -fsS "http://127.0.0.1:$aport/metrics" | awk '/^tillstream_customer_table_customers/ {print $NF}')
  tbytes=$(grep -o '"table_bytes":[0-9]*' "$work/orders$i.log" | head -1 | cut -d: -f2)
  stop_pid "$pid"
  echo "$label|$envs|$kj|$r|$hwm|$cust|$t_ready|$trimmed|${tbytes:--}" >>"$work/rows.txt"
done
python3 - "$work/rows.txt" "$n" "$bct" <<'PY'
import sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1])]
n = int(sys.argv[2])
base = int(rows[0][3]) / 1024
goal = 150e6 / 2**20
print(f"customer table of {n:,} customers in the running tillstream-orders (goal <= 150 MB = {goal:.2f} MiB):")
ok = True
for label, envs, kj, rss, hwm, cust, tr, trim, tb in rows:
    r = int(rss) / 1024
    ok = ok and r <= goal
    t = f"; after malloc_trim(0) {int(trim) / 1024:.1f} MiB ({int(trim) * 1024 / 1e6:.0f} MB)" if trim != "-" else ""
    print(f"  {label}: {r:.1f} MiB steady RSS = {r * 2**20 / 1e6:.0f} MB ({'under' if r <= goal else 'OVER'} the goal; {r / base:.2f}x the first row){t}")
print(f"  bench_custtable {n}: {sys.argv[3].strip()}")
print()
print("| variant | environment | kafka overrides | customers in table | table's own bytes MiB | ready after s | steady RSS MiB | VmHWM MiB | RSS after malloc_trim(0) MiB |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|")
for label, envs, kj, rss, hwm, cust, tr, trim, tb in rows:
    t = f"{int(trim) / 1024:.1f}" if trim != "-" else "-"
    b = f"{int(tb) / 2**20:.1f}" if tb != "-" else "-"
    print(f"| {label} | {envs or '-'} | `{kj}` | {cust} | {b} | {int(tr) / 1000:.1f} | {int(rss) / 1024:.1f} | {int(hwm) / 1024:.1f} | {t} |")
sys.exit(0 if ok else 1)
PY
