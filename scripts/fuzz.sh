#!/usr/bin/env bash
# scripts/fuzz.sh [--seconds N] - build the libFuzzer targets (clang, ASan +
# UBSan) and run each for N seconds (default 15; the test command runs it
# bounded, a longer run is e.g. `scripts/fuzz.sh --seconds 600`; only some
# targets: TS_FUZZ_TARGETS="fuzz_decode_avro_order ..."). A crash
# fails the run and leaves its input in build-fuzz/crash-*.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=15
[ "${1:-}" = --seconds ] && secs=$2
build=${TS_FUZZ_BUILD_DIR:-$here/build-fuzz}
CC=clang CXX=clang++ cmake -S "$here" -B "$build" -G Ninja -DTS_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(fuzz_decode_order_json fuzz_decode_customer_json fuzz_time_decimal_phone
         fuzz_decode_avro_order fuzz_decode_avro_customer fuzz_decode_confluent fuzz_digitre)
[ -n "${TS_FUZZ_TARGETS:-}" ] && read -r -a targets <<<"$TS_FUZZ_TARGETS"
cmake --build "$build" -j2 --target "${targets[@]}" >"$build/fuzz-build.log" 2>&1 || { cat "$build/fuzz-build.log" >&2; exit 1; }
for t in "${targets[@]}"; do
  corpus="$build/corpus-$t"; mkdir -p "$corpus"
  case $t in
    *avro_order*) cp -n "$here"/tests/fuzz/corpus/avro-order/* "$corpus"/ 2>/dev/null || true ;;
    *avro_customer*) cp -n "$here"/tests/fuzz/corpus/avro-customer/* "$corpus"/ 2>/dev/null || true ;;
    *confluent*) cp -n "$here"/tests/fuzz/corpus/confluent/* "$corpus"/ 2>/dev/null || true ;;
    *order*) cp -n "$here"/tests/fuzz/corpus/order/* "$corpus"/ 2>/dev/null || true ;;
    *customer*) cp -n "$here"/tests/fuzz/corpus/customer/* "$corpus"/ 2>/dev/null || true ;;
    *phone*) cp -n "$here"/tests/fuzz/corpus/phone/* "$corpus"/ 2>/dev/null || true ;;
    *digitre*) cp -n "$here"/tests/fuzz/corpus/digitre/* "$corpus"/ 2>/dev/null || true ;;
  esac
  # Avro-C keeps pointers at unaligned offsets inside its generic values:
  # LeakSanitizer only sees them with use_unaligned=1 (without it, reachable
  # memory is reported as leaked).
  lsan=${LSAN_OPTIONS:-}; case $t in *avro*|*confluent*) lsan="use_unaligned=1${lsan:+:$lsan}" ;; esac
  (cd "$build" && LSAN_OPTIONS=$lsan "./$t" -max_total_time="$secs" -max_len=65536 \
      -print_final_stats=1 "$corpus" >"$build/$t.log" 2>&1) ||
    { tail -40 "$build/$t.log" >&2; echo "fuzz: $t crashed" >&2; exit 1; }
  echo "fuzz: $t clean for ${secs}s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$') runs)"
done
