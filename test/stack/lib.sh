# shellcheck shell=bash
# Shared helpers for the local service stack. Sourced by the scripts in test/stack/, never run.
# Everything the stack owns lives in the repo-local, git-ignored .stack/ folder.

STACK_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$STACK_SRC/../.." && pwd)
STACK_DIR="$REPO_ROOT/.stack"
cd "$REPO_ROOT" || exit 1
mkdir -p "$STACK_DIR"

log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# True when something accepts TCP connections on host:port (bash's /dev/tcp, no extra tools).
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# wait_for <seconds> <description> <command...>: poll the command every half second.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || {
      log "timed out after ${secs}s waiting for $what"
      return 1
    }
    sleep 0.5
  done
}

# Pid from a pid file, but only if that process is alive and its command line contains
# <marker> (guards against a stale pid file whose pid was reused by something else).
live_pid() {
  local pidfile=$1 marker=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
  echo "$pid"
}

# start_daemon <pidfile> <logfile> <command...>: run detached (own session, no stdin, output
# to the log) so that the caller - a terminal, npm, or a vitest child_process - neither waits
# on its pipes nor takes it down on exit. `exec` makes the recorded pid the service's pid.
start_daemon() {
  local pidfile=$1 logfile=$2
  shift 2
  rm -f "$pidfile" # a stale one (after kill -9) would look like our new process
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
  # 9>&- : the service must not inherit (and so keep holding) service_lock's lock.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  wait_for 5 "pid file $pidfile" test -s "$pidfile"
}

# died_during_start <pidfile>: true once the process started by start_daemon is gone.
died_during_start() { pid_gone "$(<"$1")"; }

# stop_daemon <name> <pidfile> <marker> <port...>: SIGTERM, wait, SIGKILL after a timeout,
# then wait until the ports are free. Harmless when nothing runs.
stop_daemon() {
  local name=$1 pidfile=$2 marker=$3 pid port
  shift 3
  local grace=${STOP_TIMEOUT:-30}
  if pid=$(live_pid "$pidfile" "$marker"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" "$grace" || {
      log "$name did not exit after ${grace}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || die "$name (pid $pid) survives SIGKILL"
    }
  fi
  rm -f "$pidfile"
  for port in "$@"; do
    wait_for 15 "port $port to be free" port_free "$port" || die "port $port still in use: $(port_owner "$port")"
  done
}

wait_gone() { wait_for "$2" "pid $1 to exit" pid_gone "$1" 2>/dev/null; }
# A zombie (dead, not yet reaped by a parent that does not care) counts as gone.
pid_gone() {
  kill -0 "$1" 2>/dev/null || return 0
  [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]
}
port_free() { ! port_open 127.0.0.1 "$1"; }

# Who listens on a port (for error messages only).
port_owner() { ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/  */ /g' || true; }

# Refuse to start when a foreign process already holds one of our ports.
require_free_ports() {
  local name=$1 port
  shift
  for port in "$@"; do
    port_free "$port" || die "cannot start $name: port $port is taken by another process: $(port_owner "$port")"
  done
}

# Fill a template: @STACK_DIR@ -> absolute .stack path. Writes only when the content changed.
render() {
  local src=$1 dst=$2 tmp
  tmp=$(mktemp "$dst.XXXX")
  sed "s#@STACK_DIR@#$STACK_DIR#g" "$src" >"$tmp"
  if cmp -s "$tmp" "$dst"; then rm -f "$tmp"; else mv "$tmp" "$dst"; fi
}

# apt_ensure <command> <package>...: install the packages (root only, non-interactive) when
# the command is missing. One `apt-get update` per script run.
apt_ensure() {
  local cmd=$1
  shift
  command -v "$cmd" >/dev/null && return 0
  [[ $(id -u) == 0 ]] || die "'$cmd' is missing; install: apt-get install $*"
  log "installing $* from apt"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z ${STACK_APT_UPDATED:-} ]]; then
    apt-get update -qq
    STACK_APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  command -v "$cmd" >/dev/null || die "'$cmd' still missing after installing $*"
}

# Maven, quiet and non-interactive (-B). Maven 3.8 still prints bare ANSI resets with -q;
# strip them so logs stay clean (pipefail keeps mvn's exit status).
mvn_quiet() { mvn -q -B -Dstyle.color=never "$@" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d'; }

# service_lock <dir>: serialize start/stop of one service across processes (e.g. a fault test
# restarting Kafka while someone runs up.sh). Held until the calling script exits.
service_lock() {
  mkdir -p "$1"
  exec 9>"$1/.lock"
  flock -w 300 9 || die "could not lock $1/.lock within 300s"
}

# Print the subcommand usage for the per-service scripts.
usage_service() {
  echo "usage: $0 {install|start|stop|restart|status}" >&2
  exit 2
}
