#!/usr/bin/env bash
# scripts/kafka.sh - a real Apache Kafka broker (KRaft, single node) for the
# integration tests, from the Apache Kafka jars on Maven Central, run with
# the machine's Java 17. No Docker, no tarball download.
#
#   scripts/kafka.sh fetch                       # one-time: jars into $TS_CACHE
#   scripts/kafka.sh start DIR                   # fresh data dir, loopback, free port
#   scripts/kafka.sh topic DIR NAME PARTITIONS [compact] [KEY=VALUE...]  # topic configs
#   scripts/kafka.sh delete-records DIR TOPIC PARTITION OFFSET  # log start -> OFFSET
#   scripts/kafka.sh stop DIR
#   scripts/kafka.sh kill DIR                    # SIGKILL the broker, keep DIR (a crash)
#   scripts/kafka.sh restart DIR                 # start it again on DIR's data and ports
#
# `start` writes DIR/bootstrap (host:port) and DIR/pid. With TS_KAFKA_SCRAM=USER:PASSWORD
# the broker also has a SASL_PLAINTEXT listener (SCRAM-SHA-256, USER created at
# format time), in DIR/bootstrap_sasl; and
#   scripts/kafka.sh scram-password DIR USER PASSWORD  # changes a SCRAM user's password
set -euo pipefail
KAFKA_VERSION=${TS_KAFKA_VERSION:-3.9.1}
cache=${TS_CACHE:-$HOME/.cache/tillstream}/kafka-$KAFKA_VERSION
cmd=${1:-}

fetch() {
  [ -f "$cache/.complete" ] && return 0
  command -v mvn >/dev/null || { echo "kafka.sh: Maven (mvn) is required" >&2; exit 1; }
  mkdir -p "$cache/libs"
  local pom; pom=$(mktemp -d)
  cat >"$pom/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tillstream</groupId><artifactId>kafka-fetch</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $cache (one time)" >&2
  mvn -q -B -f "$pom/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$cache/libs" >&2
  rm -rf "$pom"
  touch "$cache/.complete"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

start() {
  local dir=$1
  fetch
  rm -rf "$dir"; mkdir -p "$dir/data"
  local port cport sport=""; port=$(free_port); cport=$(free_port)
  local listeners="PLAINTEXT://127.0.0.1:$port" scram=()
  if [ -n "${TS_KAFKA_SCRAM:-}" ]; then
    sport=$(free_port)
    listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$sport"
    scram=(--add-scram "SCRAM-SHA-256=[name=${TS_KAFKA_SCRAM%%:*},password=${TS_KAFKA_SCRAM#*:}]")
  fi
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=-1
log.cleaner.backoff.ms=1000
PROPS
  cat >"$dir/log4j.properties" <<'L4J'
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
L4J
  local cp="$cache/libs/*"
  local jopts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
               -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir")
  java "${jopts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)" \
       -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  [ -z "$sport" ] || echo "127.0.0.1:$sport" >"$dir/bootstrap_sasl"
  run "$dir"
}

run() { # starts the broker on DIR's config and data; waits until it answers
  local dir=$1 port
  port=$(cut -d: -f2 "$dir/bootstrap")
  local cp="$cache/libs/*"
  local jopts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
               -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir")
  nohup java "${jopts[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" >>"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 120); do
    if kcat -b "127.0.0.1:$port" -L -m 2 >/dev/null 2>&1; then
      echo "kafka.sh: broker ready at 127.0.0.1:$port (KRaft, Kafka $KAFKA_VERSION)" >&2
      return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { tail -n 30 "$dir/stdout.log" "$dir/server.log" >&2 2>/dev/null; exit 1; }
    sleep 0.5
  done
  echo "kafka.sh: broker did not become ready" >&2; tail -n 30 "$dir/server.log" >&2 2>/dev/null; exit 1
}

topic() {
  local dir=$1 name=$2 parts=$3
  shift 3
  local extra=()
  for c in "$@"; do
    case "$c" in
      compact) extra+=(--config cleanup.policy=compact) ;;
      *=*) extra+=(--config "$c") ;;
    esac
  done
  java -Xmx256m -cp "$cache/libs/*" -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir" \
       org.apache.kafka.tools.TopicCommand --bootstrap-server "$(cat "$dir/bootstrap")" \
       --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 "${extra[@]}" >/dev/null
}

delete_records() { # records of TOPIC:PARTITION below OFFSET are gone (retention)
  local dir=$1
  printf '{"partitions":[{"topic":"%s","partition":%d,"offset":%d}],"version":1}' "$2" "$3" "$4" >"$dir/delete-records.json"
  java -Xmx256m -cp "$cache/libs/*" -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir" \
       org.apache.kafka.tools.DeleteRecordsCommand --bootstrap-server "$(cat "$dir/bootstrap")" \
       --offset-json-file "$dir/delete-records.json" >/dev/null
}

scram_password() { # a SCRAM-SHA-256 user's new password (existing sessions stay authenticated)
  local dir=$1
  java -Xmx256m -cp "$cache/libs/*" -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir" \
       kafka.admin.ConfigCommand --bootstrap-server "$(cat "$dir/bootstrap")" --alter --entity-type users \
       --entity-name "$2" --add-config "SCRAM-SHA-256=[iterations=4096,password=$3]" >/dev/null
}

kill_broker() { # a crash: SIGKILL, data dir kept
  local dir=$1 pid
  pid=$(cat "$dir/pid")
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  echo "kafka.sh: broker $pid did not die" >&2; exit 1
}

stop() {
  local dir=$1
  [ -f "$dir/pid" ] || return 0
  local pid; pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

case "$cmd" in
  fetch) fetch ;;
  start) start "${2:?DIR}" ;;
  topic) topic "${2:?DIR}" "${3:?NAME}" "${4:?PARTITIONS}" "${@:5}" ;;
  stop) stop "${2:?DIR}" ;;
  delete-records) delete_records "${2:?DIR}" "${3:?TOPIC}" "${4:?PARTITION}" "${5:?OFFSET}" ;;
  kill) kill_broker "${2:?DIR}" ;;
  restart) fetch; run "${2:?DIR}" ;;
  scram-password) scram_password "${2:?DIR}" "${3:?USER}" "${4:?PASSWORD}" ;;
  *) echo "usage: $0 fetch | start DIR | topic DIR NAME PARTITIONS [compact] | delete-records DIR TOPIC PARTITION OFFSET | stop DIR | kill DIR | restart DIR | scram-password DIR USER PASSWORD" >&2; exit 2 ;;
esac
