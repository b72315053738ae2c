#!/usr/bin/env bash
# Stop the local service stack (SIGTERM, wait, SIGKILL after a timeout). Harmless when nothing runs.
#   bash test/stack/down.sh            keep data (Kafka log dirs, ClickHouse tables) and .stack/env
#   bash test/stack/down.sh --clean    also delete data, logs, generated config and .stack/env;
#                                      downloaded jars/tarballs and built kube binaries stay for the next up.sh
# (Apicurio keeps its registry in memory: every start is empty either way.)
set -euo pipefail
# shellcheck source=test/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

clean=false
case ${1:-} in
  "") ;;
  --clean) clean=true ;;
  *)
    echo "usage: $0 [--clean]" >&2
    exit 2
    ;;
esac

# Stop every service even if one of them fails to stop; report failure at the end.
rc=0
for service in kube-apiserver apicurio kafka clickhouse; do
  bash "$STACK_SRC/$service.sh" stop || rc=1
done

if $clean && ((rc == 0)); then
  log "deleting stack state (keeping downloads)"
  rm -rf "$STACK_DIR"/kafka/{data,server.properties} "$STACK_DIR"/kafka/*.log* \
    "$STACK_DIR"/clickhouse/{data,tmp,log,user_files,format_schemas,config.xml,users.xml} \
    "$STACK_DIR"/apicurio/*.log "$STACK_DIR/env" \
    "$STACK_DIR"/kube/{etcd-data,pki,kubeconfig,auth-header,build} "$STACK_DIR"/kube/*.log
fi
exit "$rc"
