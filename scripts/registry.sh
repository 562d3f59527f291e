#!/usr/bin/env bash
# scripts/registry.sh - a real schema registry speaking the Confluent REST
# API for the integration tests, on 127.0.0.1 and a free port.
#
#   scripts/registry.sh fetch                   # one-time: build the registry into $TS_CACHE
#   scripts/registry.sh start DIR [BOOTSTRAP]   # prints the URL, writes DIR/url and DIR/pid
#   scripts/registry.sh stop DIR                # an outage: the registry process stops, its store stays
#   scripts/registry.sh restart DIR             # back on the same port with the same ids
#   scripts/registry.sh destroy DIR             # stop everything and remove DIR
#   scripts/registry.sh tls DIR                 # only the private CA and 127.0.0.1 certificate,
#                                               # in DIR/tls (other tests' TLS servers)
#
# Which registry (docs/registry.md): AxonOps Schema Registry, an Apache-2.0
# Go implementation of the Confluent Schema Registry REST API, fetched as a
# Go module through the Go module proxy and built once with the machine's
# Go; its store is a PostgreSQL cluster (Debian's postgresql, installed by
# scripts/setup.sh) created in DIR and kept running across stop/restart,
# so an outage keeps every schema id, as with a production registry.
# Karapace is not on PyPI, Confluent's registry is not on Maven Central,
# and Apicurio's Maven Central artifacts lack modules it needs to run.
#
# TLS: TS_REGISTRY_TLS=1 at start serves https with a private CA made for
# DIR (DIR/tls/ca.crt; the server certificate names 127.0.0.1 only).
# Basic auth: TS_REGISTRY_USER + TS_REGISTRY_PASSWORD in the environment of
# `start`/`restart`.
# TS_REGISTRY_IMPL=standin selects scripts/schema_registry.py instead (the
# Python stand-in: no Go, no PostgreSQL).
# BOOTSTRAP is accepted for a Kafka-backed registry; this one ignores it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
impl=${TS_REGISTRY_IMPL:-axonops}
AXON_VERSION=${TS_REGISTRY_VERSION:-v0.2.1}
AXON_MODULE=github.com/axonops/axonops-schema-registry
cache=${TS_CACHE:-$HOME/.cache/tillstream}/axonops-schema-registry-$AXON_VERSION
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

fetch() {
  [ "$impl" = standin ] && return 0
  [ -x "$cache/schema-registry" ] && return 0
  command -v go >/dev/null || { echo "registry.sh: Go is required to build the schema registry" >&2; exit 1; }
  echo "registry.sh: building AxonOps Schema Registry $AXON_VERSION (Go module) into $cache (one time)" >&2
  local tmp; tmp=$(mktemp -d)
  # the module by its exact version (no version listing needed), then a
  # build in a writable copy of it
  local dir
  dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$AXON_MODULE@$AXON_VERSION" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])')
  cp -r "$dir" "$tmp/src" && chmod -R u+w "$tmp/src"
  mkdir -p "$cache"
  (cd "$tmp/src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$cache/schema-registry.tmp" ./cmd/schema-registry) >&2
  mv "$cache/schema-registry.tmp" "$cache/schema-registry"
  rm -rf "$tmp"
}

# PostgreSQL refuses to run as root: as root, run it as the postgres user;
# as anybody else, as that user.
if [ "$(id -u)" = 0 ]; then pg() { runuser -u postgres -- "$pgbin/$@"; }
else pg() { "$pgbin/$@"; }; fi

pg_start() { # a PostgreSQL cluster of its own, on a free port; its path in DIR/pgdata
  local dir=$1
  [ -n "$pgbin" ] || { echo "registry.sh: PostgreSQL is required (scripts/setup.sh installs it)" >&2; exit 1; }
  if [ ! -f "$dir/pgdata" ]; then
    # outside DIR: the postgres user must reach it, and DIR may be private
    local data; data=$(mktemp -d "${TMPDIR:-/tmp}/tillstream-registry-pg.XXXXXX")
    [ "$(id -u)" != 0 ] || chown postgres "$data"
    chmod 700 "$data"
    pg initdb -D "$data" -A trust -U registry >/dev/null
    echo "$data" >"$dir/pgdata"
    free_port >"$dir/pgport"
  fi
  local port data; port=$(cat "$dir/pgport"); data=$(cat "$dir/pgdata")
  pg pg_ctl -D "$data" -l "$data/server.log" -w -t 60 \
     -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off" start >/dev/null
  pg psql -h 127.0.0.1 -p "$port" -U registry -d postgres -tAc \
     "SELECT 1 FROM pg_database WHERE datname='schemaregistry'" | grep -q 1 ||
    pg createdb -h 127.0.0.1 -p "$port" -U registry schemaregistry
}

run() {
  local dir=$1 port=$2
  if [ "$impl" = standin ]; then
    local auth=()
    [ -n "${TS_REGISTRY_USER:-}" ] && auth=(--user "$TS_REGISTRY_USER" --password-env TS_REGISTRY_PASSWORD)
    nohup python3 "$here/schema_registry.py" --port "$port" --state "$dir/state.json" "${auth[@]}" \
        >>"$dir/registry.log" 2>&1 &
  else
    # basic auth (TS_REGISTRY_USER + TS_REGISTRY_PASSWORD): the registry's
    # own users, its first admin created from the environment
    local auth="    enabled: false"
    if [ -n "${TS_REGISTRY_USER:-}" ]; then
      auth="    enabled: true
    methods: [basic]
    bootstrap:
      enabled: true
      username: \"$TS_REGISTRY_USER\"
    rbac:
      enabled: true
      default_role: readonly
      super_admins: [\"$TS_REGISTRY_USER\"]"
    fi
    local tls="    enabled: false"
    if [ -f "$dir/tls/server.crt" ]; then
      tls="    enabled: true
    cert_file: \"$dir/tls/server.crt\"
    key_file: \"$dir/tls/server.key\"
    min_version: TLS1.2"
    fi
    # the store's password: any (trust on loopback), but lib/pq needs one
    cat >"$dir/registry.yaml" <<EOF
server:
  host: "127.0.0.1"
  port: $port
storage:
  type: postgresql
  postgresql:
    host: 127.0.0.1
    port: $(cat "$dir/pgport")
    database: schemaregistry
    user: registry
    password: "registry"
    ssl_mode: disable
compatibility:
  default_level: NONE
logging:
  level: info
  format: json
security:
  tls:
$tls
  auth:
$auth
EOF
    SCHEMA_REGISTRY_BOOTSTRAP_PASSWORD=${TS_REGISTRY_PASSWORD:-} \
      nohup "$cache/schema-registry" -config "$dir/registry.yaml" >>"$dir/registry.log" 2>&1 &
  fi
  echo $! >"$dir/pid"
  local scheme=http ca=()
  [ -f "$dir/tls/ca.crt" ] && scheme=https ca=(--cacert "$dir/tls/ca.crt")
  echo "$scheme://127.0.0.1:$port" >"$dir/url"
  for _ in $(seq 1 300); do
    local code
    code=$(curl -s "${ca[@]}" -o /dev/null -w '%{http_code}' "$scheme://127.0.0.1:$port/subjects" 2>/dev/null || true)
    if [ "$code" = 200 ] || [ "$code" = 401 ]; then
      echo "$scheme://127.0.0.1:$port"
      return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { tail -20 "$dir/registry.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "registry.sh: registry did not become ready" >&2; tail -20 "$dir/registry.log" >&2; exit 1
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

make_tls() { # a private CA and a server certificate for 127.0.0.1, in DIR/tls
  local t=$1/tls
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tillstream test CA" \
      -keyout "$t/ca.key" -out "$t/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$t/ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
      -days 2 -extfile "$t/ext" -out "$t/server.crt" 2>/dev/null
}

destroy() {
  local dir=$1
  stop "$dir"
  if [ -f "$dir/pgdata" ] && [ -n "$pgbin" ]; then
    local data; data=$(cat "$dir/pgdata")
    pg pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$data"
  fi
  rm -rf "$dir"
}

case "$cmd" in
  fetch) fetch ;;
  start)
    dir=${2:?DIR}; mkdir -p "$dir"; dir=$(cd "$dir" && pwd); echo "${3:-}" >"$dir/bootstrap"
    fetch
    [ "$impl" = standin ] || pg_start "$dir"
    if [ "${TS_REGISTRY_TLS:-0}" = 1 ]; then
      [ "$impl" != standin ] || { echo "registry.sh: TS_REGISTRY_TLS needs the real registry" >&2; exit 2; }
      make_tls "$dir"
    fi
    run "$dir" "$(free_port)" ;;
  restart) dir=${2:?DIR}; run "$dir" "$(sed 's/.*://' "$dir/url")" ;;
  stop) stop "${2:?DIR}" ;;
  destroy) destroy "${2:?DIR}" ;;
  tls) make_tls "${2:?DIR}" ;;
  *) echo "usage: $0 fetch | start DIR [BOOTSTRAP] | stop DIR | restart DIR | destroy DIR | tls DIR" >&2; exit 2 ;;
esac
