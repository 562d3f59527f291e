#!/usr/bin/env bash
# scripts/test.sh - the README's second command: set up a fresh machine,
# build, and run every test. `.ci/run` calls exactly this.
#
# Layers (ctest labels): unit (cmocka), contract (payloads vs Klaviyo's
# official OpenAPI schemas, independent validator), integration (real
# Apache Kafka broker in KRaft mode + real schema registry + the Klaviyo
# simulator over loopback HTTP), ops (Helm chart, compose, Dockerfile,
# promtool). Unit tests also run under ASan/UBSan, decoders are fuzzed for
# a bounded time. Downloads (Kafka jars, registry, helm) are cached in
# $TS_CACHE (default ~/.cache/tillstream), outside the clone.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export TS_CACHE=${TS_CACHE:-$HOME/.cache/tillstream}
build=${TS_BUILD_DIR:-$here/build}

echo "== setup and build" >&2
"$here/scripts/setup.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/tillstream-test.XXXXXX")
cleanup() {
  [ -x "$here/scripts/kafka.sh" ] && "$here/scripts/kafka.sh" stop "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== sanitizers: unit tests under ASan/UBSan" >&2
cmake -S "$here" -B "$build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTS_WERROR=ON -DTS_SANITIZE=ON >/dev/null
cmake --build "$build-asan" -j "$(nproc)" >/dev/null
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build-asan" -L unit -j 2 --output-on-failure >"$work/asan.log" 2>&1 \
  || { cat "$work/asan.log"; echo "sanitizer run failed" >&2; exit 1; }
tail -n 1 "$work/asan.log" >&2

if [ -x "$here/scripts/fuzz.sh" ]; then
  echo "== fuzzing decoders (bounded)" >&2
  "$here/scripts/fuzz.sh" --seconds "${TS_FUZZ_SECONDS:-15}" >&2
fi

echo "== infrastructure: Kafka broker (KRaft), schema registry, helm" >&2
if [ -x "$here/scripts/kafka.sh" ]; then
  "$here/scripts/kafka.sh" fetch >&2
  "$here/scripts/kafka.sh" start "$work/kafka" >&2
  TS_KAFKA_BOOTSTRAP=$(cat "$work/kafka/bootstrap")
  export TS_KAFKA_BOOTSTRAP
  export TS_KAFKA_DIR="$work/kafka"
fi
# the schema registry is built once (cached); each Avro test starts its own,
# since they stop and restart it for outages
if [ -x "$here/scripts/registry.sh" ]; then
  "$here/scripts/registry.sh" fetch >&2
fi
if [ -x "$here/scripts/helm.sh" ]; then
  "$here/scripts/helm.sh" >&2
fi
export PATH="$TS_CACHE/bin:$PATH"

echo "== all tests" >&2
ctest --test-dir "$build" -j "${TS_TEST_JOBS:-2}" --output-on-failure
