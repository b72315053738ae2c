#!/usr/bin/env bash
# Local service stack without Docker (DESIGN.md section 7): ClickHouse, Kafka, Apicurio Registry, and a
# real Kubernetes API server (kube-apiserver + etcd, built with Go: test/stack/kube-apiserver.sh).
#   bash test/stack/up.sh        (npm run stack:up)
# Installs on first use (apt for ClickHouse, Maven Central for Kafka and Apicurio, all cached in
# ~/.m2 and the git-ignored .stack/), starts what is not running, waits until each service
# answers, then writes .stack/env (KEY=VALUE) for the tests. Running it again is harmless:
# services that already run and answer are left alone; .stack/env is always rewritten.
#
# Per-service control (fault tests): test/stack/{kafka,clickhouse,apicurio,kube-apiserver}.sh {start|stop|restart|status}
# Apicurio's Confluent-compat quirks and settings are documented at the top of apicurio.sh.
set -euo pipefail
# shellcheck source=test/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ENV_FILE=$STACK_DIR/env
declare -A TOOK

# Run "<script> start" and remember how long it took (install + start + wait).
start_service() {
  local name=$1 t0
  t0=$(date +%s%N)
  bash "$STACK_SRC/$name.sh" start
  TOOK[$name]=$(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN { printf "%.1fs", ns / 1e9 }')
}

check_prerequisites() {
  command -v java >/dev/null || die "java is missing (Java 17+ for Kafka, 21+ for Apicurio)"
  command -v mvn >/dev/null || die "mvn is missing (Maven fetches the Kafka and Apicurio jars)"
  apt_ensure curl curl
}

write_env() {
  local tmp
  tmp=$(mktemp "$ENV_FILE.XXXX")
  cat >"$tmp" <<EOF
# Written by test/stack/up.sh; addresses of the local service stack.
KAFKA_BROKERS=127.0.0.1:19092
SCHEMA_REGISTRY_URL=http://127.0.0.1:18081/apis/ccompat/v7
CLICKHOUSE_URL=http://127.0.0.1:18123
CLICKHOUSE_USER=default
CLICKHOUSE_PASSWORD=
STACK_DIR=$STACK_DIR
KAFKA_HOME_LIBS=$STACK_DIR/kafka/libs
# Not KUBECONFIG: a developer's own KUBECONFIG must never win over (or be mistaken for) the test cluster.
STACK_KUBECONFIG=$STACK_DIR/kube/kubeconfig
EOF
  mv "$tmp" "$ENV_FILE"
}

summary() {
  local ch kafka apicurio kube
  ch=$(curl -fsS http://127.0.0.1:18123/ --data-binary 'SELECT version()')
  kafka=$(basename "$STACK_DIR"/kafka/libs/kafka_2.13-*.jar .jar | sed 's/^kafka_2.13-//')
  apicurio=$(curl -fsS http://127.0.0.1:18081/apis/registry/v3/system/info |
    sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
  kube=$("$STACK_DIR/kube/bin/kube-apiserver" --version | sed 's/^Kubernetes //')
  echo
  echo "Local stack is up; addresses in $ENV_FILE"
  printf '  %-19s %-56s %s\n' \
    "ClickHouse $ch" "http://127.0.0.1:18123 (native TCP 127.0.0.1:19000)" "${TOOK[clickhouse]}" \
    "Kafka $kafka" "127.0.0.1:19092 (KRaft controller 127.0.0.1:19093)" "${TOOK[kafka]}" \
    "Apicurio $apicurio" "http://127.0.0.1:18081/apis/ccompat/v7" "${TOOK[apicurio]}" \
    "kube-apiserver $kube" "https://127.0.0.1:16443 (etcd 127.0.0.1:12379)" "${TOOK[kube-apiserver]}"
  echo "  total ${SECONDS}s; logs in .stack/*/; stop with: bash test/stack/down.sh [--clean]"
}

check_prerequisites
# ClickHouse first: its apt install is the slowest step on a fresh machine.
start_service clickhouse
start_service kafka
# Apicurio (Confluent API at /apis/ccompat/v7, Java 21+). Recorded answers (details in apicurio.sh):
#   GET /config/<missing subject>                 -> 404 {"error_code":40401}
#   GET /config/<subject without its own level>   -> 200 {"compatibilityLevel":"BACKWARD"} with our
#       apicurio.rules.global.compatibility=BACKWARD (Apicurio default: NONE; Confluent: 404 40408)
#   PUT /config/<subject> {"compatibility":"BACKWARD"} -> 200 {"compatibility":"BACKWARD","normalize":false}
#   ids are content ids (same schema, same id across subjects), incompatible schema -> 409.
start_service apicurio
# kube-apiserver and etcd for the collectors' real-API tests; the first run builds them with Go (cached).
start_service kube-apiserver
write_env
summary
