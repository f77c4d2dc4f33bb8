#!/usr/bin/env bash
# Run one local Apache Kafka broker (KRaft, combined broker+controller) for
# tests and benchmarks, or a cluster of N brokers on loopback. The broker
# comes from Maven Central through `mvn`; no tarball, no Docker.
#
#   scripts/kafka.sh start|stop|restart|status|fetch|logs
#
# Environment:
#   KAFKA_VERSION      broker version (default 4.1.2)
#   KAFKA_PORT         client port on 127.0.0.1 (default 9092); controller = +1
#   KAFKA_DATA         data/log dir (default .cache/kafka/data-<port>)
#   KAFKA_EXTRA_PROPS  extra server.properties lines ("k=v" separated by
#                      newlines or spaces), appended last so they win
#   KAFKA_HEAP         JVM heap (default 512m; 384m each with KAFKA_BROKERS)
#   KAFKA_START_TIMEOUT seconds to wait for the broker (default 120)
#   KAFKA_STOP_TIMEOUT  seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_FRESH=1      wipe the data dir before start
#   KAFKA_REQUEST_LOG=1 log every completed request to <data>/requests.log
#                      (kafka.request.logger at DEBUG; for counting requests)
#   KAFKA_SASL_PORT    also open a SASL_PLAINTEXT listener (mechanism PLAIN) on
#                      127.0.0.1:<this port>, next to the PLAINTEXT one
#                      (restart keeps the running broker's SASL port)
#   KAFKA_SASL_USER / KAFKA_SASL_PASSWORD  its one JAAS user (smc / smc-secret)
#
# A cluster: KAFKA_BROKERS=N (3 to 9; default 1, the single broker above).
# Broker i (1..N) is node.id i, its own JVM, listening on 127.0.0.1 at
# KAFKA_PORT + 2(i-1) for clients and the next port for the controller; its
# data is in $KAFKA_DATA/broker-<i> (KAFKA_DATA default
# .cache/kafka/cluster-<KAFKA_PORT>). Nodes 1-3 are broker+controller (a
# static quorum of three), nodes above 3 brokers only. The cluster is shaped
# like production (docs/operations.md): default replication 3 and
# min.insync.replicas 2, also for the transaction state and consumer offsets
# topics, unclean leader election off, no automatic topic creation. No SASL.
#
#   KAFKA_BROKERS=3 scripts/kafka.sh start        all brokers; prints the bootstrap list
#   KAFKA_BROKERS=3 scripts/kafka.sh stop         all brokers (SIGTERM together, SIGKILL after KAFKA_STOP_TIMEOUT)
#   KAFKA_BROKERS=3 scripts/kafka.sh restart      stop all, start all
#   KAFKA_BROKERS=3 scripts/kafka.sh status       one line per broker; exit 0 only if all run
#   KAFKA_BROKERS=3 scripts/kafka.sh bootstrap    the bootstrap list
#   KAFKA_BROKERS=3 scripts/kafka.sh kill I       SIGKILL broker I (no controlled shutdown)
#   KAFKA_BROKERS=3 scripts/kafka.sh stop-one I   SIGTERM broker I (controlled shutdown) and wait
#   KAFKA_BROKERS=3 scripts/kafka.sh start-one I  start broker I on its data and wait until it answers
#   KAFKA_BROKERS=3 scripts/kafka.sh restart-one I
#   KAFKA_BROKERS=3 scripts/kafka.sh leader TOPIC P   node id of the leader of partition P (-1: none)
#   KAFKA_BROKERS=3 scripts/kafka.sh wait-in-sync [S] wait up to S seconds (default 120) until no
#                                                     partition is under-replicated
#   KAFKA_BROKERS=3 scripts/kafka.sh logs I [N]   the last N lines of broker I's log
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.2}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT=$((KAFKA_PORT + 1))
CACHE="$ROOT/.cache/kafka"
VDIR="$CACHE/$KAFKA_VERSION"
LIBS="$VDIR/libs"
DATA="${KAFKA_DATA:-$CACHE/data-$KAFKA_PORT}"
BROKERS="${KAFKA_BROKERS:-1}"
if [[ $BROKERS == 1 ]]; then
  HEAP="${KAFKA_HEAP:-512m}"
else
  HEAP="${KAFKA_HEAP:-384m}"
fi
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
SASL_PORT="${KAFKA_SASL_PORT:-}"
SASL_USER="${KAFKA_SASL_USER:-smc}"
SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-smc-secret}"
PIDFILE="$DATA/kafka.pid"
LOGFILE="$DATA/server.log"
PROPS="$DATA/server.properties"
# Kafka 4.1 brings slf4j-api 1.7.x, so the binding is log4j-slf4j-impl (not -slf4j2-).
LOG4J_VERSION="2.24.3"

say() { echo "kafka.sh: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found (run scripts/deps.sh)"
}

# Writes the tiny pom whose runtime dependency tree is the broker, its tools and
# a Log4j2 backend (Kafka 4.x logs through SLF4J -> Log4j2).
write_pom() {
  cat >"$VDIR/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>smc.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

# Ensures $LIBS holds the complete runtime classpath. A finished copy is marked
# with .complete, so later runs need neither mvn nor the network.
fetch() {
  if [[ -f "$LIBS/.complete" ]]; then
    return 0
  fi
  need mvn
  need java
  mkdir -p "$VDIR"
  write_pom
  rm -rf "$LIBS.tmp"
  local args=(-B -q -f "$VDIR/pom.xml" dependency:copy-dependencies
    -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp")
  say "fetching Apache Kafka $KAFKA_VERSION from Maven into $LIBS"
  if ! mvn -o "${args[@]}" >"$VDIR/mvn.log" 2>&1; then
    rm -rf "$LIBS.tmp"
    mvn "${args[@]}" >"$VDIR/mvn.log" 2>&1 || {
      tail -n 30 "$VDIR/mvn.log" >&2
      die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (log: $VDIR/mvn.log)"
    }
  fi
  ls "$LIBS.tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 ||
    die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  touch "$LIBS/.complete"
  say "fetched $(ls "$LIBS"/*.jar | wc -l) jars"
}

pid_alive() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A stale pid file may name a recycled pid: it must still be our broker.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $PROPS"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

kjava() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$DATA/log4j2-tools.properties" -cp "$LIBS/*" "$@"
}

write_config() {
  mkdir -p "$DATA/logs"
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if [[ -n $SASL_PORT ]]; then
    [[ $SASL_PORT =~ ^[0-9]+$ && $SASL_PORT != "$KAFKA_PORT" && $SASL_PORT != "$CONTROLLER_PORT" ]] ||
      die "KAFKA_SASL_PORT must be a port number other than $KAFKA_PORT and $CONTROLLER_PORT"
    [[ $SASL_USER =~ ^[A-Za-z0-9._-]+$ && $SASL_PASSWORD != *'"'* && $SASL_PASSWORD != *'\'* ]] ||
      die "KAFKA_SASL_USER must be [A-Za-z0-9._-]+ and KAFKA_SASL_PASSWORD free of quotes and backslashes"
    listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
    protocols="$protocols,SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh; regenerated on every start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$DATA/logs
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
log.flush.interval.messages=9223372036854775807
EOF
  if [[ -n $SASL_PORT ]]; then
    # SASL/PLAIN on its own listener; the broker itself keeps talking PLAINTEXT.
    cat >>"$PROPS" <<EOF
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$SASL_USER" password="$SASL_PASSWORD" user_$SASL_USER="$SASL_PASSWORD";
EOF
  fi
  if [[ -n "${KAFKA_EXTRA_PROPS:-}" ]]; then
    echo "# KAFKA_EXTRA_PROPS" >>"$PROPS"
    # Accept newline- or space-separated k=v pairs.
    tr ' ' '\n' <<<"$KAFKA_EXTRA_PROPS" | sed '/^$/d' >>"$PROPS"
  fi
  write_log4j
}

# The broker's Log4j2 configuration (into $LOGFILE) and the tools' (stderr).
write_log4j() {
  cat >"$DATA/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOGFILE
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
EOF
  if [[ -n ${KAFKA_REQUEST_LOG:-} ]]; then
    # every request the broker completes, one line each, for counting them
    cat >>"$DATA/log4j2.properties" <<EOF
appender.req.type = File
appender.req.name = REQ
appender.req.fileName = $DATA/requests.log
appender.req.append = false
appender.req.layout.type = PatternLayout
appender.req.layout.pattern = %m%n
logger.req.name = kafka.request.logger
logger.req.level = DEBUG
logger.req.additivity = false
logger.req.appenderRef.req.ref = REQ
EOF
  fi
  cat >"$DATA/log4j2-tools.properties" <<EOF
status = error
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m%n
rootLogger.level = ERROR
rootLogger.appenderRef.err.ref = ERR
EOF
}

# Formats the KRaft storage once per data dir (meta.properties marks it).
format_storage() {
  if [[ -f "$DATA/logs/meta.properties" ]]; then
    return 0
  fi
  local id
  id="$(kjava kafka.tools.StorageTool random-uuid)"
  say "formatting KRaft storage in $DATA (cluster id $id)"
  kjava kafka.tools.StorageTool format --standalone -t "$id" -c "$PROPS" \
    >>"$DATA/format.log" 2>&1 || {
    cat "$DATA/format.log" >&2
    die "storage format failed"
  }
}

# Readiness: the client port accepts connections and an admin client can list
# topics (a real request through the broker's metadata path).
wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  while ! port_open "$KAFKA_PORT"; do
    pid_alive || {
      tail -n 40 "$LOGFILE" >&2 || true
      die "broker exited during startup (log: $LOGFILE)"
    }
    ((SECONDS < deadline)) || die "broker did not open port $KAFKA_PORT in ${START_TIMEOUT}s"
    sleep 0.2
  done
  while ! kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --list >/dev/null 2>>"$DATA/ready.log"; do
    pid_alive || die "broker exited during startup (log: $LOGFILE)"
    ((SECONDS < deadline)) || die "broker did not answer requests in ${START_TIMEOUT}s"
    sleep 1
  done
}

# Starts the broker JVM of $PROPS in the background and writes $PIDFILE.
# setsid: the broker must outlive this script and not get the caller's
# terminal signals; stop/restart manage it through the pid file.
launch() {
  setsid java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$DATA/log4j2.properties" \
    -Dkafka.logs.dir="$DATA" -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    >>"$DATA/stdout.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
}

start() {
  if pid_alive; then
    say "already running (pid $(cat "$PIDFILE"))"
    echo "127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  if port_open "$KAFKA_PORT"; then
    die "port $KAFKA_PORT is in use by another process; set KAFKA_PORT"
  fi
  if [[ -n $SASL_PORT ]] && port_open "$SASL_PORT"; then
    die "port $SASL_PORT is in use by another process; set KAFKA_SASL_PORT"
  fi
  need java
  fetch
  if [[ "${KAFKA_FRESH:-0}" == 1 ]]; then
    rm -rf "$DATA"
  fi
  write_config
  format_storage
  local t0=$SECONDS
  launch
  if ! (wait_ready); then
    say "startup failed; last lines of $LOGFILE:"
    tail -n 20 "$LOGFILE" >&2 || true
    stop
    exit 1
  fi
  if [[ -n $SASL_PORT ]]; then
    local deadline=$((SECONDS + START_TIMEOUT))
    while ! port_open "$SASL_PORT"; do
      ((SECONDS < deadline)) || die "the SASL listener did not open port $SASL_PORT"
      sleep 0.2
    done
    say "SASL_PLAINTEXT (PLAIN, user $SASL_USER) on 127.0.0.1:$SASL_PORT"
  fi
  say "Kafka $KAFKA_VERSION ready in $((SECONDS - t0))s (pid $(cat "$PIDFILE"), data $DATA)"
  echo "127.0.0.1:$KAFKA_PORT"
}

stop() {
  if ! pid_alive; then
    say "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "broker did not stop in ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$PIDFILE"
  say "stopped (pid $pid)"
}

status() {
  if pid_alive; then
    local sasl
    sasl="$(sed -n 's|^listeners=.*SASL_PLAINTEXT://\([^,]*\).*|, sasl \1|p' "$PROPS" 2>/dev/null)"
    echo "running (pid $(cat "$PIDFILE"), bootstrap 127.0.0.1:$KAFKA_PORT$sasl, data $DATA)"
    return 0
  fi
  echo "not running (port $KAFKA_PORT)"
  return 3
}

# ---- a cluster of KAFKA_BROKERS brokers -----------------------------------

BASE_PORT="$KAFKA_PORT"
CLUSTER="${KAFKA_DATA:-$CACHE/cluster-$BASE_PORT}"
CONTROLLERS=3
NODE=0

# Points the single-broker globals (ports, data dir, pid file, log, props)
# at broker $1, so stop, wait_ready and pid_alive work on it.
select_broker() {
  [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= BROKERS)) || die "broker id must be 1..$BROKERS, got '$1'"
  NODE=$1
  KAFKA_PORT=$((BASE_PORT + 2 * (NODE - 1)))
  CONTROLLER_PORT=$((KAFKA_PORT + 1))
  DATA="$CLUSTER/broker-$NODE"
  PIDFILE="$DATA/kafka.pid"
  LOGFILE="$DATA/server.log"
  PROPS="$DATA/server.properties"
}

bootstrap_list() {
  local i out=""
  for ((i = 1; i <= BROKERS; i++)); do
    out="$out${out:+,}127.0.0.1:$((BASE_PORT + 2 * (i - 1)))"
  done
  echo "$out"
}

quorum_voters() {
  local i out=""
  for ((i = 1; i <= CONTROLLERS; i++)); do
    out="$out${out:+,}$i@127.0.0.1:$((BASE_PORT + 2 * (i - 1) + 1))"
  done
  echo "$out"
}

# server.properties of broker $NODE: the production settings of
# docs/operations.md (docker/compose.yaml carries the same ones).
write_config_multi() {
  mkdir -p "$DATA/logs"
  local roles=broker listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT"
  if ((NODE <= CONTROLLERS)); then
    roles=broker,controller
    listeners="$listeners,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
  fi
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh (KAFKA_BROKERS=$BROKERS); regenerated on every start.
process.roles=$roles
node.id=$NODE
controller.quorum.voters=$(quorum_voters)
listeners=$listeners
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/logs
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.flush.interval.messages=9223372036854775807
EOF
  if [[ -n "${KAFKA_EXTRA_PROPS:-}" ]]; then
    echo "# KAFKA_EXTRA_PROPS" >>"$PROPS"
    tr ' ' '\n' <<<"$KAFKA_EXTRA_PROPS" | sed '/^$/d' >>"$PROPS"
  fi
  write_log4j
}

# One cluster id for every node, kept in the cluster dir; each node's storage
# is formatted once with it (static quorum: no --standalone).
format_multi() {
  if [[ -f "$DATA/logs/meta.properties" ]]; then
    return 0
  fi
  if [[ ! -s "$CLUSTER/cluster.id" ]]; then
    kjava kafka.tools.StorageTool random-uuid >"$CLUSTER/cluster.id"
  fi
  say "formatting KRaft storage of broker $NODE in $DATA (cluster id $(cat "$CLUSTER/cluster.id"))"
  kjava kafka.tools.StorageTool format -t "$(cat "$CLUSTER/cluster.id")" -c "$PROPS" \
    >>"$DATA/format.log" 2>&1 || {
    cat "$DATA/format.log" >&2
    die "storage format of broker $NODE failed"
  }
}

# Launches broker $NODE unless it runs (then says so).
launch_one() {
  if pid_alive; then
    say "broker $NODE already running (pid $(cat "$PIDFILE"))"
    return 0
  fi
  ! port_open "$KAFKA_PORT" || die "port $KAFKA_PORT (broker $NODE) is in use by another process"
  if ((NODE <= CONTROLLERS)) && port_open "$CONTROLLER_PORT"; then
    die "port $CONTROLLER_PORT (controller $NODE) is in use by another process"
  fi
  write_config_multi
  format_multi
  launch
}

multi_stop_all() {
  local i pid entry pids=() deadline=$((SECONDS + STOP_TIMEOUT))
  # SIGTERM to all at once: stopped one by one, the last ones would wait for
  # a controller quorum that has already gone.
  for ((i = 1; i <= BROKERS; i++)); do
    select_broker "$i"
    if pid_alive; then
      pid="$(cat "$PIDFILE")"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$i:$pid")
    fi
    rm -f "$PIDFILE"
  done
  for entry in "${pids[@]}"; do
    pid="${entry#*:}"
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        say "broker ${entry%%:*} did not stop in ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
    say "stopped broker ${entry%%:*} (pid $pid)"
  done
  ((${#pids[@]})) || say "not running"
}

multi_start_all() {
  need java
  fetch
  local i running=0
  for ((i = 1; i <= BROKERS; i++)); do
    select_broker "$i"
    if pid_alive; then running=1; fi
  done
  if [[ "${KAFKA_FRESH:-0}" == 1 ]]; then
    ((running == 0)) || die "KAFKA_FRESH=1 but brokers of $CLUSTER run: stop them first"
    rm -rf "$CLUSTER"
  fi
  mkdir -p "$CLUSTER"
  local t0=$SECONDS
  for ((i = 1; i <= BROKERS; i++)); do
    select_broker "$i"
    launch_one
  done
  # A broker answers only once a majority of the controllers runs: wait for
  # each after all were launched.
  for ((i = 1; i <= BROKERS; i++)); do
    select_broker "$i"
    if ! (wait_ready); then
      say "broker $i did not start; last lines of $LOGFILE:"
      tail -n 20 "$LOGFILE" >&2 || true
      multi_stop_all
      exit 1
    fi
  done
  say "Kafka $KAFKA_VERSION: $BROKERS brokers ready in $((SECONDS - t0))s (data $CLUSTER)"
  bootstrap_list
}

multi_start_one() {
  need java
  fetch
  select_broker "$1"
  mkdir -p "$CLUSTER"
  local t0=$SECONDS
  launch_one
  if ! (wait_ready); then
    say "broker $NODE did not start; last lines of $LOGFILE:"
    tail -n 20 "$LOGFILE" >&2 || true
    stop
    exit 1
  fi
  say "broker $NODE ready in $((SECONDS - t0))s (pid $(cat "$PIDFILE"))"
}

multi_kill_one() {
  select_broker "$1"
  if ! pid_alive; then
    say "broker $NODE not running"
    rm -f "$PIDFILE"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$PIDFILE"
  say "killed broker $NODE (pid $pid)"
}

multi_status() {
  local i up=0
  for ((i = 1; i <= BROKERS; i++)); do
    select_broker "$i"
    if pid_alive; then
      echo "broker $i: running (pid $(cat "$PIDFILE"), 127.0.0.1:$KAFKA_PORT, data $DATA)"
      up=$((up + 1))
    else
      echo "broker $i: not running (port $KAFKA_PORT)"
    fi
  done
  ((up == BROKERS)) || return 3
}

# TopicCommand against whichever brokers answer (tools' log4j config: broker 1's).
multi_topics_tool() {
  select_broker 1
  [[ -f "$DATA/log4j2-tools.properties" ]] || die "no cluster in $CLUSTER (start it first)"
  kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_list)" "$@"
}

multi_leader() {
  [[ $# == 2 && $2 =~ ^[0-9]+$ ]] || die "usage: leader TOPIC PARTITION"
  local out
  out="$(multi_topics_tool --describe --topic "$1")" || die "cannot describe topic $1"
  awk -v p="$2" '{ for (i = 1; i < NF; i++) {
      if ($i == "Partition:") part = $(i + 1)
      if ($i == "Leader:" && part == p) { l = $(i + 1); print (l == "none" ? -1 : l); found = 1; exit } } }
    END { if (!found) exit 1 }' <<<"$out" || die "topic $1 has no partition $2"
}

multi_wait_in_sync() {
  local limit="${1:-120}" out
  local deadline=$((SECONDS + limit))
  while :; do
    if out="$(multi_topics_tool --describe --under-replicated-partitions 2>/dev/null)" &&
      [[ -z $out ]]; then
      say "no partition is under-replicated"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "$out" | head -n 20 >&2
      die "partitions still under-replicated after ${limit}s"
    fi
    sleep 1
  done
}

multi_main() {
  [[ $BROKERS =~ ^[0-9]+$ ]] && ((BROKERS >= 3 && BROKERS <= 9)) ||
    die "KAFKA_BROKERS must be 1 or 3..9"
  [[ -z $SASL_PORT ]] || die "KAFKA_SASL_PORT is for the single broker only"
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
  start) multi_start_all ;;
  stop) multi_stop_all ;;
  restart)
    multi_stop_all
    multi_start_all
    ;;
  status) multi_status ;;
  bootstrap) bootstrap_list ;;
  kill) multi_kill_one "${1:-}" ;;
  stop-one)
    select_broker "${1:-}"
    stop
    ;;
  start-one) multi_start_one "${1:-}" ;;
  restart-one)
    select_broker "${1:-}"
    stop
    multi_start_one "$1"
    ;;
  leader) multi_leader "$@" ;;
  wait-in-sync) multi_wait_in_sync "$@" ;;
  fetch) fetch ;;
  logs)
    select_broker "${1:-}"
    tail -n "${2:-100}" "$LOGFILE"
    ;;
  *)
    echo "usage: KAFKA_BROKERS=$BROKERS $0 start|stop|restart|status|bootstrap|fetch" >&2
    echo "       KAFKA_BROKERS=$BROKERS $0 kill|stop-one|start-one|restart-one ID" >&2
    echo "       KAFKA_BROKERS=$BROKERS $0 leader TOPIC PARTITION | wait-in-sync [S] | logs ID [N]" >&2
    exit 2
    ;;
  esac
}

if [[ $BROKERS != 1 ]]; then
  multi_main "$@"
  exit $?
fi

case "${1:-}" in
start) start ;;
stop) stop ;;
restart)
  # keep the SASL listener of the running broker unless told otherwise
  if [[ -z $SASL_PORT && -f $PROPS ]]; then
    SASL_PORT="$(sed -n 's|^listeners=.*SASL_PLAINTEXT://127.0.0.1:\([0-9]*\).*|\1|p' "$PROPS")"
  fi
  stop
  start
  ;;
status) status ;;
fetch) fetch ;;
logs) tail -n "${2:-100}" "$LOGFILE" ;;
*)
  echo "usage: $0 start|stop|restart|status|fetch|logs [N]" >&2
  exit 2
  ;;
esac
