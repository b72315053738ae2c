#!/usr/bin/env bash
# A real Kubernetes API server for the collectors' integration tests (issue 18): kube-apiserver
# 1.35.4 on etcd 3.6.5, both built from the Go module proxy (no kubelet, no controllers: tests
# drive pod status through the pods/status subresource).
#   test/stack/kube-apiserver.sh {install|start|stop|restart|status}
#
# install builds both binaries into .stack/kube/bin when they are missing. A build is a scratch
# module requiring k8s.io/kubernetes v1.35.4 with every k8s.io/* staging module (a `=> ./staging/`
# replace in its go.mod) replaced by its published v0.35.4, and one requiring etcd's server
# module (its main package is the etcd binary). Built binaries are also kept in
# ~/.cache/gpu-meter/kube-<versions>/ (outside the clone, as Go's own caches are), so a fresh clone
# (CI) copies them instead of building. Cold (empty Go module and build caches: downloads, then
# ~2,000 packages compiled) the build took 24 min on the shared 2-core machine under load (11.5
# CPU-minutes); warm (a fresh clone, Go's caches in ~/go/pkg/mod and ~/.cache/go-build kept) 40 s,
# mostly linking. KUBE_BIN_CACHE=<dir> puts the binary cache elsewhere (a missing dir: build).
#
# start: etcd on 127.0.0.1:12379 (peer 12380), kube-apiserver on https://127.0.0.1:16443 with a
# self-signed CA and serving certificate (SANs 127.0.0.1, localhost), a static bearer token for
# user "gpu-meter-test" in group system:masters (authorization RBAC: masters may do everything),
# and a service-account key pair. Writes .stack/kube/kubeconfig (CA + token), which up.sh puts in
# .stack/env as KUBECONFIG. The token lives only in .stack/kube/ (mode 600) and the kubeconfig;
# this script never prints it. etcd's data starts empty on every start (a test stack).
set -euo pipefail
# shellcheck source=test/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBE_VERSION=1.35.4
KUBE_STAGING_VERSION=0.35.4
ETCD_VERSION=3.6.5
ETCD_PORT=12379
ETCD_PEER_PORT=12380
KUBE_PORT=16443
KUBE_URL=https://127.0.0.1:$KUBE_PORT
KDIR=$STACK_DIR/kube
BIN=$KDIR/bin
PKI=$KDIR/pki
KUBECONFIG_FILE=$KDIR/kubeconfig
ETCD_PID=$KDIR/etcd.pid
KUBE_PID=$KDIR/kube-apiserver.pid
# Unique to our processes' command lines (see live_pid).
ETCD_MARKER=$KDIR/etcd-data
KUBE_MARKER=$PKI/serving.crt
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
BIN_CACHE=${KUBE_BIN_CACHE:-$HOME/.cache/gpu-meter/kube-v$KUBE_VERSION-etcd-v$ETCD_VERSION}

binaries_present() { [[ -x $BIN/kube-apiserver && -x $BIN/etcd ]]; }

kube_install() {
  binaries_present && return 0
  mkdir -p "$BIN"
  if [[ -x $BIN_CACHE/kube-apiserver && -x $BIN_CACHE/etcd ]]; then
    log "kube: copying kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION from $BIN_CACHE"
    cp "$BIN_CACHE/kube-apiserver" "$BIN_CACHE/etcd" "$BIN/"
    return 0
  fi
  [[ -x $GO ]] || die "kube: go is missing (set GO=/path/to/go); needed to build kube-apiserver and etcd"
  local t0=$SECONDS
  log "kube: building kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION from the Go module proxy (log: .stack/kube/build.log)"
  build_etcd >>"$KDIR/build.log" 2>&1 || die "kube: etcd build failed; tail of .stack/kube/build.log:
$(tail -n 30 "$KDIR/build.log")"
  build_kube_apiserver >>"$KDIR/build.log" 2>&1 || die "kube: kube-apiserver build failed; tail of .stack/kube/build.log:
$(tail -n 30 "$KDIR/build.log")"
  log "kube: built in $((SECONDS - t0))s"
  # Another clone of the repo on this machine (CI's) reuses them. Copy then rename: a reader never
  # sees a half-written binary.
  mkdir -p "$BIN_CACHE"
  local b
  for b in kube-apiserver etcd; do
    cp "$BIN/$b" "$BIN_CACHE/.$b.tmp" && mv "$BIN_CACHE/.$b.tmp" "$BIN_CACHE/$b"
  done
}

# `nice`: the 2-core machine is shared with test runs. CGO off, as Kubernetes' own release build.
go_build() { CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" nice -n 10 "$GO" "$@"; }

build_etcd() {
  local src=$KDIR/build/etcd
  rm -rf "$src" && mkdir -p "$src"
  (
    cd "$src"
    "$GO" mod init gpu-meter.local/etcd-build
    "$GO" get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    go_build build -trimpath -ldflags '-s -w' -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

build_kube_apiserver() {
  local src=$KDIR/build/kube-apiserver gomod staging module
  rm -rf "$src" && mkdir -p "$src"
  (
    cd "$src"
    "$GO" mod init gpu-meter.local/kube-apiserver-build
    gomod=$("$GO" mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    [[ -s $gomod ]] || die "kube: no go.mod for k8s.io/kubernetes@v$KUBE_VERSION"
    # k8s.io/api => ./staging/src/k8s.io/api  ->  k8s.io/api => k8s.io/api v0.35.4
    staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod")
    [[ -n $staging ]] || die "kube: found no staging replaces in $gomod"
    for module in $staging; do
      "$GO" mod edit -replace "$module=$module@v$KUBE_STAGING_VERSION"
    done
    "$GO" get "k8s.io/kubernetes/cmd/kube-apiserver@v$KUBE_VERSION"
    local v=k8s.io/component-base/version
    go_build build -trimpath \
      -ldflags "-s -w -X $v.gitVersion=v$KUBE_VERSION -X $v.gitMajor=${KUBE_VERSION%%.*} -X $v.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION") -X $v.gitTreeState=clean" \
      -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

# CA, serving certificate, service-account key pair, token file. Made once per .stack/kube/pki.
kube_pki() {
  [[ -f $PKI/.done ]] && return 0
  apt_ensure openssl openssl
  rm -rf "$PKI" && mkdir -p "$PKI" && chmod 700 "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=gpu-meter-test-ca' \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj '/CN=kube-apiserver' -keyout serving.key -out serving.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >serving.ext
    openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile serving.ext -out serving.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # token,user,uid,"group1,group2"
    (umask 077 && printf '%s,gpu-meter-test,gpu-meter-test,"system:masters"\n' "$(openssl rand -hex 24)" >tokens.csv)
    touch .done
  )
}

write_kubeconfig() {
  local token tmp
  token=$(cut -d, -f1 "$PKI/tokens.csv")
  tmp=$(mktemp "$KUBECONFIG_FILE.XXXX")
  chmod 600 "$tmp"
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: gpu-meter-test
    cluster:
      server: $KUBE_URL
      certificate-authority: $PKI/ca.crt
users:
  - name: gpu-meter-test
    user:
      token: $token
contexts:
  - name: gpu-meter-test
    context:
      cluster: gpu-meter-test
      user: gpu-meter-test
current-context: gpu-meter-test
EOF
  mv "$tmp" "$KUBECONFIG_FILE"
}

etcd_answers() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }

# /readyz with the token (curl reads the header from a file: the token stays off command lines).
kube_answers() {
  [[ -f $KDIR/auth-header ]] || return 1
  [[ $(curl -sS --max-time 3 --cacert "$PKI/ca.crt" -H "@$KDIR/auth-header" "$KUBE_URL/readyz" 2>/dev/null) == ok ]]
}

etcd_ready_or_dead() {
  ! died_during_start "$ETCD_PID" || die "etcd exited during startup; tail of its log:
$(tail -n 20 "$KDIR/etcd.log")"
  etcd_answers
}

kube_ready_or_dead() {
  ! died_during_start "$KUBE_PID" || die "kube-apiserver exited during startup; tail of its log:
$(tail -n 20 "$KDIR/kube-apiserver.log")"
  kube_answers
}

kube_start() {
  apt_ensure curl curl
  kube_install
  kube_pki
  write_kubeconfig
  (umask 077 && printf 'Authorization: Bearer %s\n' "$(cut -d, -f1 "$PKI/tokens.csv")" >"$KDIR/auth-header")
  if live_pid "$ETCD_PID" "$ETCD_MARKER" >/dev/null; then
    log "etcd: already running (pid $(<"$ETCD_PID"))"
  else
    require_free_ports etcd "$ETCD_PORT" "$ETCD_PEER_PORT"
    rm -rf "$ETCD_MARKER"
    log "etcd: starting on http://127.0.0.1:$ETCD_PORT (log: .stack/kube/etcd.log)"
    start_daemon "$ETCD_PID" "$KDIR/etcd.log" \
      "$BIN/etcd" --name gpu-meter-test --data-dir "$ETCD_MARKER" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "gpu-meter-test=http://127.0.0.1:$ETCD_PEER_PORT" \
      --listen-metrics-urls '' --log-level warn
  fi
  wait_for 60 "etcd to answer on 127.0.0.1:$ETCD_PORT" etcd_ready_or_dead || die "etcd did not come up; see .stack/kube/etcd.log"
  if live_pid "$KUBE_PID" "$KUBE_MARKER" >/dev/null; then
    log "kube-apiserver: already running (pid $(<"$KUBE_PID"))"
  else
    require_free_ports kube-apiserver "$KUBE_PORT"
    log "kube-apiserver: starting on $KUBE_URL (log: .stack/kube/kube-apiserver.log)"
    # --service-cluster-ip-range: needed for the default kubernetes Service; no network is set up.
    # --endpoint-reconciler-type none: its Endpoints would name 127.0.0.1, which validation refuses
    # (loopback), and it logs that error every 10 s.
    start_daemon "$KUBE_PID" "$KDIR/kube-apiserver.log" \
      "$BIN/kube-apiserver" \
      --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$KUBE_PORT" \
      --tls-cert-file "$PKI/serving.crt" --tls-private-key-file "$PKI/serving.key" \
      --client-ca-file "$PKI/ca.crt" \
      --token-auth-file "$PKI/tokens.csv" --anonymous-auth=false \
      --authorization-mode RBAC \
      --service-account-issuer https://kubernetes.default.svc \
      --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
      --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
      --v 1
  fi
  wait_for 120 "kube-apiserver to answer on $KUBE_URL/readyz" kube_ready_or_dead ||
    die "kube-apiserver did not come up; see .stack/kube/kube-apiserver.log"
  log "kube-apiserver: ready on $KUBE_URL (kubeconfig: .stack/kube/kubeconfig)"
}

kube_stop() {
  # The API server first: it would log etcd connection errors while etcd goes.
  stop_daemon kube-apiserver "$KUBE_PID" "$KUBE_MARKER" "$KUBE_PORT"
  stop_daemon etcd "$ETCD_PID" "$ETCD_MARKER" "$ETCD_PORT" "$ETCD_PEER_PORT"
}

kube_status() {
  if live_pid "$KUBE_PID" "$KUBE_MARKER" >/dev/null && live_pid "$ETCD_PID" "$ETCD_MARKER" >/dev/null && kube_answers; then
    echo "kube-apiserver: running (pid $(<"$KUBE_PID"), etcd pid $(<"$ETCD_PID")) on $KUBE_URL"
  else
    echo "kube-apiserver: not running"
    return 1
  fi
}

mkdir -p "$KDIR"
[[ ${1:-} == status ]] || service_lock "$KDIR"
case ${1:-} in
  install) kube_install ;;
  start) kube_start ;;
  stop) kube_stop ;;
  restart) kube_stop && kube_start ;;
  status) kube_status ;;
  *) usage_service ;;
esac
