#!/usr/bin/env bash
# Each third-party library is included by one folder of the core only
# (docs/architecture.md): rdkafka -> src/kafka, libcurl -> src/http,
# Avro-C -> src/avro, libmicrohttpd -> src/admin,
# libphonenumber -> src/phone; no public header in
# include/tillstream includes any of them. The dev tools (tools/) are a
# library of their own and may use what they need.
set -euo pipefail
cd "$TS_SOURCE_DIR"
fail=0
check() { # pattern allowed-folder
  local hits
  hits=$(grep -rlE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<$1" src include | grep -v "^$2/" || true)
  if [ -n "$hits" ]; then
    echo "FAIL: <$1...> included outside $2: $hits" >&2
    fail=1
  fi
  # positive control: the allowed folder does include it
  grep -rqE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<$1" "$2" ||
    { echo "FAIL: $2 no longer includes <$1...>: update this test and docs/architecture.md" >&2; fail=1; }
}
check 'librdkafka/' src/kafka
check 'curl/' src/http
check 'avro\.h' src/avro
check 'microhttpd\.h' src/admin
check 'phonenumbers/' src/phone
[ $fail = 0 ] && echo "includes: rdkafka, curl, avro, microhttpd each in one folder"
exit $fail
