# tests/lib.sh - shared helpers for the integration tests (sourced).
# The test command (scripts/test.sh) starts one real Kafka broker and
# exports TS_KAFKA_BOOTSTRAP and TS_KAFKA_DIR. Each test uses topics and
# groups of its own (a random suffix), so tests never see each other's data.
set -euo pipefail
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
}

wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "timeout waiting for $1" >&2; return 1; }

start_sim() { # start_sim [extra sim flags...]; sets $sim_port
  export KLAVIYO_KEY_BRAND_A=pk_it_a KLAVIYO_KEY_BRAND_B=pk_it_b KLAVIYO_KEY_BRAND_C=pk_it_c
  "$bin/tillstream-klaviyo-sim" --port-file "$work/sim.port" --account brand-a=KLAVIYO_KEY_BRAND_A \
      --account brand-b=KLAVIYO_KEY_BRAND_B --account brand-c=KLAVIYO_KEY_BRAND_C "$@" >/dev/null 2>"$work/sim.log" &
  pids+=($!)
  wait_file "$work/sim.port"
  sim_port=$(cat "$work/sim.port")
}

write_config() { # write_config FILE [python dict updates as JSON]
  python3 - "$src/samples/config.sandbox.json" "$1" "$TS_KAFKA_BOOTSTRAP" "$sim_port" "$sfx" "${2:-{\}}" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
bs, port, sfx = sys.argv[3], sys.argv[4], sys.argv[5]
c["kafka"] = {"bootstrap.servers": bs}
c["topics"] = {"customers": f"pos.customers.{sfx}", "orders": f"pos.orders.{sfx}", "dead_letter": f"pos.deadletter.{sfx}"}
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

read_dlq() { # one JSON object per dead letter: key, value, headers
  kcat -b "$TS_KAFKA_BOOTSTRAP" -C -t "pos.deadletter.$sfx" -e -q -J 2>/dev/null || true
}
