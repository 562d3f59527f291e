#!/usr/bin/env bash
# ctest: cost 50 (seconds, about: long tests start first)
# valgrind (memcheck) stays clean on the offline pipeline over the samples
# and on the phone (libphonenumber), mapping, config and decoder (JSON, Avro,
# registry) unit tests:
# no invalid reads/writes, no
# uninitialised values, no leaks.
set -euo pipefail
command -v valgrind >/dev/null || { echo "valgrind missing (scripts/setup.sh installs it)" >&2; exit 1; }
# tests/valgrind.supp: libphonenumber's singleton and caches (created once,
# never freed: "still reachable" / "possibly lost", never definite)
vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --suppressions="$TS_SOURCE_DIR/tests/valgrind.supp")
cfg=$TS_SOURCE_DIR/samples/config.sandbox.json
"${vg[@]}" "$TS_BIN_DIR/tillstream-orders" --config "$cfg" --dry-run --input "$TS_SOURCE_DIR/samples/orders.jsonl" \
    --customers "$TS_SOURCE_DIR/samples/customers.jsonl" >/dev/null
"${vg[@]}" "$TS_BIN_DIR/tillstream-customers" --config "$cfg" --dry-run --input "$TS_SOURCE_DIR/samples/customers.jsonl" >/dev/null
for t in test_phone test_map test_config test_decode_json test_offsets test_custtable test_avro test_registry; do
  "${vg[@]}" "$TS_BIN_DIR/$t" >/dev/null 2>&1 || { echo "valgrind: $t failed" >&2; "${vg[@]}" "$TS_BIN_DIR/$t" 2>&1 | tail -30 >&2; exit 1; }
done
echo "valgrind: clean"
