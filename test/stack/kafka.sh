#!/usr/bin/env bash
# Apache Kafka 4.1.1, single node KRaft (broker + controller in one JVM), from Maven Central jars.
#   test/stack/kafka.sh {install|start|stop|restart|status}
# start/restart return only once the broker answers an admin request; stop returns once the
# process is gone and both ports are free (fault tests rely on both).
set -euo pipefail
# shellcheck source=test/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION=4.1.1
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
KDIR=$STACK_DIR/kafka
LIBS=$KDIR/libs
PROPS=$KDIR/server.properties
PIDFILE=$KDIR/kafka.pid
# Unique to our broker's command line: identifies our process behind the pid file.
MARKER=$PROPS

kafka_install() {
  # A stamp rather than "libs is non-empty": an interrupted copy must not count as installed.
  local stamp=$LIBS/.installed-$KAFKA_VERSION
  [[ -f $stamp ]] && return 0
  log "kafka: fetching $KAFKA_VERSION jars from Maven Central (via ~/.m2)"
  rm -rf "$LIBS"
  mvn_quiet -f "$STACK_SRC/kafka-pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIBS"
  [[ -f $LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] || die "kafka: jars missing after mvn"
  touch "$stamp"
}

# Run a Kafka/JDK main class from our jars with quiet (stderr, WARN) logging.
kafka_tool() {
  java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$STACK_SRC/kafka/tools-log4j2.xml" \
    -cp "$LIBS/*" "$@"
}

# Format the KRaft metadata log once; a formatted log dir has meta.properties.
kafka_format() {
  [[ -f $KDIR/data/meta.properties ]] && return 0
  local cluster_id
  cluster_id=$(kafka_tool kafka.tools.StorageTool random-uuid)
  log "kafka: formatting storage (cluster id $cluster_id)"
  mkdir -p "$KDIR/data"
  kafka_tool kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$PROPS" >/dev/null
}

# Readiness: the port accepts connections, then a real admin round trip (list topics).
kafka_answers() {
  port_open 127.0.0.1 "$KAFKA_PORT" &&
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" --list >/dev/null 2>&1
}

kafka_start() {
  kafka_install
  mkdir -p "$KDIR"
  render "$STACK_SRC/kafka/server.properties" "$PROPS"
  if live_pid "$PIDFILE" "$MARKER" >/dev/null; then
    log "kafka: already running (pid $(<"$PIDFILE"))"
  else
    require_free_ports kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
    kafka_format
    log "kafka: starting on $KAFKA_BOOTSTRAP (log: .stack/kafka/kafka.log)"
    log "kafka: after an unclean stop it waits out the old broker session first (up to 120 s)"
    start_daemon "$PIDFILE" "$KDIR/stdout.log" \
      java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
      -Dkafka.stack.dir="$STACK_DIR" -Dlog4j2.configurationFile="$STACK_SRC/kafka/log4j2.xml" \
      -cp "$LIBS/*" kafka.Kafka "$PROPS"
  fi
  # Up to 240 s: after an unclean stop the controller refuses the new registration until the old
  # session (broker.session.timeout.ms, 120 s) expires; a broker that dies is still caught at once.
  wait_for 240 "kafka to answer on $KAFKA_BOOTSTRAP" kafka_ready_or_dead ||
    die "kafka did not come up; see .stack/kafka/kafka.log and .stack/kafka/stdout.log"
  log "kafka: ready on $KAFKA_BOOTSTRAP"
}

# Fails fast (exit) when the JVM died during startup instead of waiting for the timeout.
kafka_ready_or_dead() {
  ! died_during_start "$PIDFILE" || die "kafka exited during startup; tail of logs:
$(tail -n 20 "$KDIR/stdout.log" "$KDIR/kafka.log" 2>/dev/null)"
  kafka_answers
}

kafka_stop() { stop_daemon kafka "$PIDFILE" "$MARKER" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; }

kafka_status() {
  if live_pid "$PIDFILE" "$MARKER" >/dev/null && kafka_answers; then
    echo "kafka: running (pid $(<"$PIDFILE")) on $KAFKA_BOOTSTRAP"
  else
    echo "kafka: not running"
    return 1
  fi
}

[[ ${1:-} == status ]] || service_lock "$KDIR"
case ${1:-} in
  install) kafka_install ;;
  start) kafka_start ;;
  stop) kafka_stop ;;
  restart) kafka_stop && kafka_start ;;
  status) kafka_status ;;
  *) usage_service ;;
esac
