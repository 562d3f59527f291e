#!/usr/bin/env bash
# bench/e2e_cpu.sh [--orders N] [--customers N] [--runs R] [--partitions P]
#
# End-to-end CPU per event and peak RSS: tillstream-orders against the Python
# peer (/work/shared/peers/py_orders_peer.py, bulk mode), on the same data
# (gen_volume.py: N JSON orders, 4 accounts, 8 outlets), the same real broker
# (one topic of P partitions, customers in a compacted topic for tillstream and
# in customers.jsonl for the peer, as each is written to read them), the same
# sink (tillstream-klaviyo-sim with every limit x1000, --events-summary-only, so
# it answers 202 at once), interleaved runs (tillstream, peer, tillstream, ...).
# Whole-process user+sys CPU and max RSS from GNU time (start-up and the
# customer load included for both), divided by the events the sink accepted.
# Prints the ratios first, then one row per run. Defaults: 50,000 orders,
# 20,000 customers, 3 runs each, 8 partitions.
. "$(dirname "$0")/lib/common.sh"
orders=50000 customers=20000 runs=3 parts=8
bench_args "[--orders N] [--customers N] [--runs R] [--partitions P]" \
  --orders orders --customers customers --runs runs --partitions parts -- "$@"
need_bins tillstream-orders tillstream-klaviyo-sim
need_gnu_time
venv_peer_deps
broker

gen_volume "$customers" "$orders" 7
topic "bench.customers.$sfx" 3 compact
topic "bench.orders.$sfx" "$parts"
topic "bench.deadletter.$sfx" 1
topic "bench.pydlq.$sfx" 1
kcat -b "$bs" -P -t "bench.customers.$sfx" -K $'\t' -X linger.ms=50 -l "$work/data/customers.kv"
kcat -b "$bs" -P -t "bench.orders.$sfx" -K $'\t' -X linger.ms=50 -l "$work/data/orders.kv"

accts="brand-0 brand-1 brand-2 brand-3"
sim_start sink "$accts" --rate-scale 1000 --events-summary-only
spec=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(" ".join(a["name"]+":"+",".join(a["outlets"]) for a in c["accounts"]))' "$work/data/config.json")
write_config "$work/ts.json" "$sink_port" "$spec" \
  '{"routing": {"default_online_outlet": null}, "admin": {"listen": ""}}' \
  '{"rate_limits": {"events_bulk": {"burst_per_s": 10000, "steady_per_min": 150000}}}'
delivered() { sim_stats "$sink_port" | python3 -c 'import json,sys; a=json.load(sys.stdin)["accounts"]; print(sum(x["events_recorded"]+x["duplicates_ignored"] for x in a.values()), sum(x["requests"]["total"] for x in a.values()))'; }

: >"$work/runs.txt"
for i in $(seq 1 "$runs"); do
  for tool in tillstream peer; do
    curl -fsS -X POST "http://127.0.0.1:$sink_port/__sim/reset" >/dev/null
    log "run $i: $tool"
    if [ $tool = tillstream ]; then
      run_or_die "$work/$tool.$i.log" timeout 600 /usr/bin/time -f '%U %S %M %e' -o "$work/time.$tool.$i" \
        "$bin/tillstream-orders" --config "$work/ts.json" --exit-at-end --group "bench-ts-$sfx-$i" \
        >"$work/$tool.$i.log" 2>&1
    else
      run_or_die "$work/$tool.$i.log" timeout 600 /usr/bin/time -f '%U %S %M %e' -o "$work/time.$tool.$i" \
        "$venv/bin/python" "$peers/py_orders_peer.py" --bootstrap "$bs" --topic "bench.orders.$sfx" \
        --dlq "bench.pydlq.$sfx" --customers "$work/data/customers.jsonl" --config "$work/data/config.json" \
        --base-url "http://127.0.0.1:$sink_port" --group "bench-py-$sfx-$i" >"$work/$tool.$i.log" 2>&1
    fi
    echo "$tool $i $(tail -1 "$work/time.$tool.$i") $(delivered)" >>"$work/runs.txt"
  done
done

peer_pkgs=$("$venv/bin/python" -c 'import sys, confluent_kafka, requests; print("Python %d.%d.%d," % sys.version_info[:3], "confluent-kafka", confluent_kafka.__version__ + ",", "librdkafka", confluent_kafka.libversion()[0] + ",", "requests", requests.__version__)')
python3 - "$work/runs.txt" "$orders" "$parts" "$peer_pkgs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for tool, i, u, s, m, e, ev, rq in rows:
    cpu = float(u) + float(s); ev = int(ev)
    by.setdefault(tool, []).append(dict(run=int(i), cpu=cpu, rss=int(m) / 1024, wall=float(e), ev=ev, rq=int(rq),
                                        us=1e6 * cpu / max(ev, 1), eps=ev / max(float(e), 1e-9)))
med = {t: {k: statistics.median(r[k] for r in rs) for k in ("us", "rss", "eps", "ev")} for t, rs in by.items()}
ts, py = med["tillstream"], med["peer"]
print(f"e2e CPU per event, {sys.argv[2]} orders, {sys.argv[3]} partitions, medians of {len(by['tillstream'])} interleaved runs each:")
print(f"  peer / tillstream CPU per event: {py['us'] / ts['us']:.2f}x   (goal >= 10x)")
print(f"  tillstream {ts['us']:.2f} us/event, peer {py['us']:.2f} us/event")
print(f"  throughput: tillstream {ts['eps']:,.0f} events/s, peer {py['eps']:,.0f} events/s (wall, start-up included)")
print(f"  peak RSS: tillstream {ts['rss']:.1f} MiB, peer {py['rss']:.1f} MiB")
print(f"  peer packages (unpinned, the peer's figure moves with them): {sys.argv[4]}")
print()
print("| tool | run | events accepted | requests | user+sys s | us/event | wall s | events/s | max RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for t in ("tillstream", "peer"):
    for r in by[t]:
        print(f"| {t} | {r['run']} | {r['ev']:,} | {r['rq']:,} | {r['cpu']:.2f} | {r['us']:.2f} | {r['wall']:.2f} | {r['eps']:,.0f} | {r['rss']:.1f} |")
if len({r["ev"] for rs in by.values() for r in rs}) != 1:
    print("note: the two tools did not deliver the same number of events (see the table)")
PY
