#!/usr/bin/env bash
# scripts/registry.sh - a schema registry speaking the Confluent REST API
# for the integration tests, on 127.0.0.1 and a free port.
#
#   scripts/registry.sh start DIR [BOOTSTRAP]   # prints the URL, writes DIR/url and DIR/pid
#   scripts/registry.sh stop DIR                # an outage: state is kept in DIR
#   scripts/registry.sh restart DIR             # back on the same port with the same ids
#   scripts/registry.sh destroy DIR             # stop and remove DIR
#
# Which registry: Karapace is not published on PyPI (pip finds no
# version), Confluent's jars are not on Maven Central and Apicurio ships
# only as a Quarkus build: none installs from this machine's package
# registries, so this starts scripts/schema_registry.py, a stand-in in
# the Python standard library that implements the endpoints tillstream
# uses (docs/registry.md). BOOTSTRAP is accepted for a Kafka-backed
# registry and ignored by the stand-in (its state is a file in DIR).
# Basic auth: TS_REGISTRY_USER + TS_REGISTRY_PASSWORD in the environment.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

run() {
  local dir=$1 port=$2
  local auth=()
  [ -n "${TS_REGISTRY_USER:-}" ] && auth=(--user "$TS_REGISTRY_USER" --password-env TS_REGISTRY_PASSWORD)
  nohup python3 "$here/schema_registry.py" --port "$port" --state "$dir/state.json" "${auth[@]}" \
      >>"$dir/registry.log" 2>&1 &
  echo $! >"$dir/pid"
  echo "http://127.0.0.1:$port" >"$dir/url"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1]+'/subjects', timeout=1)" \
         "http://127.0.0.1:$port" 2>/dev/null || grep -q '" 401 ' "$dir/registry.log" 2>/dev/null; then
      echo "http://127.0.0.1:$port"
      return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { cat "$dir/registry.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "registry.sh: registry did not become ready" >&2; exit 1
}

stop() {
  local dir=$1
  [ -f "$dir/pid" ] || return 0
  local pid; pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case "$cmd" in
  start) dir=${2:?DIR}; mkdir -p "$dir"; echo "${3:-}" >"$dir/bootstrap"; run "$dir" "$(free_port)" ;;
  restart) dir=${2:?DIR}; run "$dir" "$(sed 's/.*://' "$dir/url")" ;;
  stop) stop "${2:?DIR}" ;;
  destroy) stop "${2:?DIR}"; rm -rf "${2:?DIR}" ;;
  *) echo "usage: $0 start DIR [BOOTSTRAP] | stop DIR | restart DIR | destroy DIR" >&2; exit 2 ;;
esac
