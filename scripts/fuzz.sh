#!/usr/bin/env bash
# scripts/fuzz.sh [--seconds N] - build the libFuzzer targets (clang, ASan +
# UBSan) and run each for N seconds (default 15; the test command runs it
# bounded, a longer run is e.g. `scripts/fuzz.sh --seconds 600`). A crash
# fails the run and leaves its input in build-fuzz/crash-*.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=15
[ "${1:-}" = --seconds ] && secs=$2
build=${TS_FUZZ_BUILD_DIR:-$here/build-fuzz}
CC=clang cmake -S "$here" -B "$build" -G Ninja -DTS_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(fuzz_decode_order_json fuzz_decode_customer_json fuzz_time_decimal_phone)
cmake --build "$build" --target "${targets[@]}" >"$build/fuzz-build.log" 2>&1 || { cat "$build/fuzz-build.log" >&2; exit 1; }
for t in "${targets[@]}"; do
  corpus="$build/corpus-$t"; mkdir -p "$corpus"
  case $t in
    *order*) cp -n "$here"/tests/fuzz/corpus/order/* "$corpus"/ 2>/dev/null || true ;;
    *customer*) cp -n "$here"/tests/fuzz/corpus/customer/* "$corpus"/ 2>/dev/null || true ;;
  esac
  (cd "$build" && "./$t" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 "$corpus" \
      >"$build/$t.log" 2>&1) || { tail -40 "$build/$t.log" >&2; echo "fuzz: $t crashed" >&2; exit 1; }
  echo "fuzz: $t clean for ${secs}s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$') runs)"
done
