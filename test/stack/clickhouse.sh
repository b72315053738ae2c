#!/usr/bin/env bash
# ClickHouse from Debian's apt package (18.16 on bookworm), run as our own instance with our
# own config and data in .stack/clickhouse/ (the system service is never used).
#   test/stack/clickhouse.sh {install|start|stop|restart|status}
# start/restart return once /ping answers and a query works; stop returns once the process is
# gone and both ports are free.
set -euo pipefail
# shellcheck source=test/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CH_HTTP_PORT=18123
CH_TCP_PORT=19000
CH_URL=http://127.0.0.1:$CH_HTTP_PORT
CDIR=$STACK_DIR/clickhouse
CONFIG=$CDIR/config.xml
PIDFILE=$CDIR/clickhouse.pid
MARKER=$CONFIG

ch_install() {
  # The package's postinst may try to start the system service; without systemd (containers,
  # CI) that fails harmlessly, and we never use that service anyway.
  apt_ensure clickhouse-server clickhouse-server clickhouse-client
  apt_ensure curl curl
}

# Config and directories. Rendered on every start so a moved checkout gets correct paths.
ch_prepare() {
  mkdir -p "$CDIR"/{data,tmp,log,user_files,format_schemas}
  render "$STACK_SRC/clickhouse/config.xml" "$CONFIG"
  render "$STACK_SRC/clickhouse/users.xml" "$CDIR/users.xml"
}

ch_query() { curl -fsS --max-time 5 "$CH_URL/" --data-binary "$1"; }
ch_answers() {
  [[ $(curl -fsS --max-time 2 "$CH_URL/ping" 2>/dev/null) == "Ok." ]] && ch_query 'SELECT version()' >/dev/null 2>&1
}

ch_start() {
  ch_install
  ch_prepare
  if live_pid "$PIDFILE" "$MARKER" >/dev/null; then
    log "clickhouse: already running (pid $(<"$PIDFILE"))"
  else
    require_free_ports clickhouse "$CH_HTTP_PORT" "$CH_TCP_PORT"
    log "clickhouse: starting on $CH_URL (logs: .stack/clickhouse/log/)"
    # Foreground mode under our own detached session (no --daemon: we keep the exact pid).
    # Runs as the invoking user (root on CI); 18.16 has no "data owner != effective user" check,
    # and everything under .stack is owned by whoever runs these scripts anyway.
    start_daemon "$PIDFILE" "$CDIR/log/stdout.log" clickhouse-server --config-file="$CONFIG"
  fi
  wait_for 60 "clickhouse to answer on $CH_URL" ch_ready_or_dead ||
    die "clickhouse did not come up; see .stack/clickhouse/log/"
  log "clickhouse: ready on $CH_URL ($(ch_query 'SELECT version()'))"
}

ch_ready_or_dead() {
  ! died_during_start "$PIDFILE" || die "clickhouse exited during startup; tail of logs:
$(tail -n 20 "$CDIR/log/stdout.log" "$CDIR/log/clickhouse-server.err.log" 2>/dev/null)"
  ch_answers
}

ch_stop() { stop_daemon clickhouse "$PIDFILE" "$MARKER" "$CH_HTTP_PORT" "$CH_TCP_PORT"; }

ch_status() {
  if live_pid "$PIDFILE" "$MARKER" >/dev/null && ch_answers; then
    echo "clickhouse: running (pid $(<"$PIDFILE")) on $CH_URL, version $(ch_query 'SELECT version()')"
  else
    echo "clickhouse: not running"
    return 1
  fi
}

[[ ${1:-} == status ]] || service_lock "$CDIR"
case ${1:-} in
  install) ch_install ;;
  start) ch_start ;;
  stop) ch_stop ;;
  restart) ch_stop && ch_start ;;
  status) ch_status ;;
  *) usage_service ;;
esac
