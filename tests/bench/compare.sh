#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/bench/compare.sh: Portico side by side with nginx and an OpenSSH reverse tunnel, on
# loopback, in one run (tests/bench/README.md). It installs what is missing from Debian
# (nginx, wrk, openssh-server, openssh-client, node, curl), builds Portico (release) in its
# own build directory, and starts in one temporary directory, on fixed loopback ports:
#   a backend nginx (/hello, /1m.bin); an nginx TLS reverse proxy (1 worker) with three
#   servers: to the backend, to an `ssh -N -R` tunnel, and to an `ssh -tt -R ... sleep`
#   tunnel (TCP_NODELAY); an sshd of its own for those tunnels; and portico-edge with two
#   registered portico-connectors and passthrough apps to the backend.
# Then it measures idle TLS connection memory at nginx-tls and the edge, runs the wrk
# workloads against each setup, runs tunnels_bench.sh for 1,000 connectors and the streams
# curve on one tunnel, and prints one table with Portico's ratios to each peer and the
# issue's targets. It stops only the processes it started (by PID).
#
# Environment: DURATION (seconds per wrk run, default 10), REPS (repetitions, median
# reported, default 3), BENCH_PORT_BASE (default 18400; ports BASE..BASE+7 on 127.0.0.1),
# BUILD (build directory, default build-bench), PORTICO_SRC (the source tree BUILD is set up
# from when it does not exist, default this checkout), IDLE_CONNS (default 1000),
# CONNECTORS (for tunnels_bench.sh, default 1000; 0 skips it), TUNNELS (the compared
# connector's tunnels_per_edge, default 2), LOG_LEVEL (Portico's log level, default warn: no
# per-request lines), CURVE (concurrencies for the streams curve on one tunnel, default
# "1 10 100 1000 10000"; empty skips it), CURVE_WARM_MAX (longest warm-up per curve point,
# default 180 s), NGINX_TLS_PROTOCOLS (default "TLSv1.2 TLSv1.3"), ONLY (setups to run, e.g.
# "nginx-tls portico"), WORKLOADS (wrk workloads to run, default "small64 small1 big64 big1
# newconn"; empty skips them), KEEP=1 (keep the temporary directory), RESULTS_OUT (a file to copy
# the table to).
set -uo pipefail

DURATION=${DURATION:-10}
REPS=${REPS:-3}
BASE=${BENCH_PORT_BASE:-18400}
IDLE_CONNS=${IDLE_CONNS:-1000}
CONNECTORS=${CONNECTORS:-1000}
TUNNELS=${TUNNELS:-2}
LOG_LEVEL=${LOG_LEVEL:-warn}
ALL_SETUPS="direct nginx-tls ssh-plain ssh-nodelay portico"
ONLY=${ONLY:-$ALL_SETUPS}

CURVE=${CURVE-1 10 100 1000 10000}
case $CURVE in *[!0-9\ ]*) echo "compare.sh: CURVE must be numbers separated by spaces" >&2; exit 2 ;; esac
for v in DURATION REPS BASE IDLE_CONNS CONNECTORS TUNNELS; do
  case ${!v} in
    '' | *[!0-9]*) echo "compare.sh: $v must be a number" >&2; exit 2 ;;
  esac
done
if [ "$DURATION" -lt 1 ] || [ "$REPS" -lt 1 ] || [ "$BASE" -lt 1024 ] || [ "$BASE" -gt 65500 ] ||
  [ "$TUNNELS" -lt 1 ] || [ "$TUNNELS" -gt 16 ]; then
  echo "compare.sh: DURATION and REPS must be at least 1, TUNNELS 1..16, BENCH_PORT_BASE 1024..65500" >&2
  exit 2
fi

root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$root" || exit 1
BUILD=${BUILD:-build-bench}
here=$root/tests/bench

say() { printf '%s\n' "$*" >&2; }
die() { say "compare.sh: $*"; exit 1; }

# ---- 1. what it needs from Debian (apt-get update once, only when something is missing) ----
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v meson >/dev/null 2>&1 || need+=(meson)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    die "missing ${need[*]}; run as root or install sudo"
  fi
  say "installing: ${need[*]}"
  "${sudo[@]}" apt-get update -q >/dev/null || die "apt-get update failed"
  # The packages' own services must not start (nginx would take port 80).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
    rc_policy_added=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${need[@]}" >/dev/null
  st=$?
  if [ -n "${rc_policy_added:-}" ]; then "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; fi
  [ $st -eq 0 ] || die "apt-get install ${need[*]} failed"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
SSHD=/usr/sbin/sshd

# ---- 2. Portico, release build, in its own build directory ----
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" "${PORTICO_SRC:-$root}" --buildtype=release >/dev/null ||
    die "meson setup failed"
fi
say "building Portico in $BUILD (release)"
if ! out=$(ninja -j2 -C "$BUILD" edge/portico-edge connector/portico-connector edge/cli/portico \
  tests/bench/tunnels_bench 2>&1); then
  printf '%s\n' "$out" >&2
  die "the build failed"
fi
BUILD=$(cd "$BUILD" && pwd)
EDGE_BIN=$BUILD/edge/portico-edge
CONN_BIN=$BUILD/connector/portico-connector
CLI_BIN=$BUILD/edge/cli/portico

# ---- ports: all on 127.0.0.1, all free ----
P_BACKEND=$BASE
P_NGX_DIRECT=$((BASE + 1))
P_NGX_SSH=$((BASE + 2))
P_NGX_SSHND=$((BASE + 3))
P_SSHD=$((BASE + 4))
P_FWD=$((BASE + 5))
P_FWDND=$((BASE + 6))
P_EDGE=$((BASE + 7))
busy=$(ss -Hltn 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
for p in $(seq "$BASE" $((BASE + 7))); do
  if printf '%s\n' "$busy" | grep -qx "$p"; then
    die "port $p is in use; set BENCH_PORT_BASE to a free range of 8 ports"
  fi
done

# ---- the temporary directory and the processes we start ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/portico-compare.XXXXXX") || die "mktemp failed"
# nginx workers may run as another user (nobody when started as root): they traverse this
# directory to reach www/; keys stay 0600 and are read by the master only.
chmod 0711 "$tmp"
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  trap - EXIT INT TERM
  local p i
  if [ -n "${curve_wrk_pid:-}" ]; then kill -TERM "$curve_wrk_pid" 2>/dev/null; fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    i=0
    while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [ -n "${KEEP:-}" ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# waits until something listens on 127.0.0.1:$1 (or the process $2 exits)
wait_port() {
  local i=0
  while [ $i -lt 100 ]; do
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q "127.0.0.1:$1" && return 0
    if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}

# ---- certificates: one CA, one ECDSA P-256 leaf for nginx-tls and the edge ----
mkdir -p "$tmp/certs"
(
  cd "$tmp/certs" || exit 1
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=Portico Bench CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out ca.crt
  openssl ecparam -name prime256v1 -genkey -noout -out leaf.key
  openssl req -new -key leaf.key -subj "/CN=localhost" -out leaf.csr
  printf 'subjectAltName=DNS:localhost,DNS:*.apps.localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
    >leaf.ext
  openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 \
    -extfile leaf.ext -out leaf.crt
  chmod 600 ca.key leaf.key
) >/dev/null 2>&1 || die "openssl could not make the certificates"
CA=$tmp/certs/ca.crt

# ---- the backend: nginx, 1 worker, /hello and /1m.bin, keep-alive ----
mkdir -p "$tmp/www" "$tmp/ngx-backend" "$tmp/ngx-proxy"
chmod 0755 "$tmp/www"
printf 'hello world\n' >"$tmp/www/hello"
head -c 1048576 /dev/urandom >"$tmp/www/1m.bin"
chmod 0644 "$tmp/www/hello" "$tmp/www/1m.bin"

# Shared http{} settings: no access log (Portico runs at LOG_LEVEL=warn, without per-request
# lines, likewise), temp paths inside the temporary directory, effectively unlimited
# keep-alive (nginx closes after 1,000 requests by default, which would add TLS handshakes).
ngx_common() { # $1: prefix dir
  cat <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $1/body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  tcp_nodelay on;
EOF
}

{
  ngx_common "$tmp/ngx-backend"
  cat <<EOF
  sendfile on;
  default_type application/octet-stream;
  types { text/plain hello; }
  server {
    listen 127.0.0.1:$P_BACKEND;
    root $tmp/www;
    location = /hello { default_type text/plain; }
    # the request counter, for the streams curve
    location = /status { stub_status; }
  }
}
EOF
} >"$tmp/ngx-backend/nginx.conf"

# The TLS reverse proxy: one worker, keep-alive to its upstreams, the same ECDSA P-256
# certificate as the edge; one server per upstream (backend, ssh -N -R, ssh -tt -R).
ngx_upstream() { # $1 name, $2 port
  printf '  upstream %s { server 127.0.0.1:%s; keepalive 64; keepalive_requests 1000000; }\n' "$1" "$2"
}
ngx_tls_server() { # $1 listen port, $2 upstream
  cat <<EOF
  server {
    listen 127.0.0.1:$1 ssl;
    location / { proxy_pass http://$2; }
  }
EOF
}
{
  ngx_common "$tmp/ngx-proxy"
  cat <<EOF
  ssl_certificate $tmp/certs/leaf.crt;
  ssl_certificate_key $tmp/certs/leaf.key;
  ssl_protocols ${NGINX_TLS_PROTOCOLS:-TLSv1.2 TLSv1.3};
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host \$host;
  proxy_max_temp_file_size 0;
EOF
  ngx_upstream backend "$P_BACKEND"
  ngx_upstream ssh_plain "$P_FWD"
  ngx_upstream ssh_nodelay "$P_FWDND"
  ngx_tls_server "$P_NGX_DIRECT" backend
  ngx_tls_server "$P_NGX_SSH" ssh_plain
  ngx_tls_server "$P_NGX_SSHND" ssh_nodelay
  echo "}"
} >"$tmp/ngx-proxy/nginx.conf"

start_nginx() { # $1 prefix dir; sets ngx_pid (the master)
  "$NGINX" -p "$1" -e "$1/error.log" -c "$1/nginx.conf" -g 'daemon off;' >"$1/stdout" 2>&1 &
  ngx_pid=$!
  pids+=("$ngx_pid")
}
start_nginx "$tmp/ngx-backend"
PID_BACKEND=$ngx_pid
start_nginx "$tmp/ngx-proxy"
PID_PROXY=$ngx_pid
wait_port "$P_BACKEND" "$PID_BACKEND" || die "the backend nginx did not start: $(cat "$tmp/ngx-backend/error.log")"
wait_port "$P_NGX_DIRECT" "$PID_PROXY" || die "the proxy nginx did not start: $(cat "$tmp/ngx-proxy/error.log")"

# ---- sshd on loopback, run as the current user, with its own keys ----
mkdir -p "$tmp/ssh"
chmod 700 "$tmp/ssh"
me=$(id -un)
ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$tmp/ssh/host_key" || die "ssh-keygen failed"
ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$tmp/ssh/id" || die "ssh-keygen failed"
cp "$tmp/ssh/id.pub" "$tmp/ssh/authorized_keys"
printf '[127.0.0.1]:%s %s\n' "$P_SSHD" "$(cat "$tmp/ssh/host_key.pub")" >"$tmp/ssh/known_hosts"
cat >"$tmp/ssh/sshd_config" <<EOF
Port $P_SSHD
ListenAddress 127.0.0.1
HostKey $tmp/ssh/host_key
AuthorizedKeysFile $tmp/ssh/authorized_keys
PidFile $tmp/ssh/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers $me
AllowTcpForwarding remote
GatewayPorts no
PermitTTY yes
X11Forwarding no
PrintMotd no
LogLevel ERROR
EOF
ssh_note=""
if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
  # sshd started by root needs its privilege separation directory (the service creates it).
  mkdir -m 0755 /run/sshd
fi
"$SSHD" -D -e -f "$tmp/ssh/sshd_config" >"$tmp/ssh/sshd.log" 2>&1 &
PID_SSHD=$!
pids+=("$PID_SSHD")
if ! wait_port "$P_SSHD" "$PID_SSHD"; then
  ssh_note="sshd did not start as $me: $(head -c 300 "$tmp/ssh/sshd.log")"
  say "compare.sh: $ssh_note"
fi
ssh_cmd=(ssh -F /dev/null -i "$tmp/ssh/id" -o IdentitiesOnly=yes -o BatchMode=yes
  -o UserKnownHostsFile="$tmp/ssh/known_hosts" -o StrictHostKeyChecking=yes
  -o ExitOnForwardFailure=yes -o ServerAliveInterval=0 -p "$P_SSHD")
PID_SSH_PLAIN=""
PID_SSH_ND=""
if [ -z "$ssh_note" ]; then
  # Plain: no pty, so neither end sets TCP_NODELAY (the usual `ssh -N -R`).
  "${ssh_cmd[@]}" -N -R "127.0.0.1:$P_FWD:127.0.0.1:$P_BACKEND" "$me@127.0.0.1" \
    </dev/null >"$tmp/ssh/plain.log" 2>&1 &
  PID_SSH_PLAIN=$!
  pids+=("$PID_SSH_PLAIN")
  # With a pty (-tt) both ends mark the session interactive and set TCP_NODELAY.
  "${ssh_cmd[@]}" -tt -R "127.0.0.1:$P_FWDND:127.0.0.1:$P_BACKEND" "$me@127.0.0.1" \
    sleep 2147483647 </dev/null >"$tmp/ssh/nodelay.log" 2>&1 &
  PID_SSH_ND=$!
  pids+=("$PID_SSH_ND")
  wait_port "$P_FWD" "$PID_SSH_PLAIN" || ssh_note="ssh -N -R did not forward: $(head -c 300 "$tmp/ssh/plain.log")"
  wait_port "$P_FWDND" "$PID_SSH_ND" || ssh_note="$ssh_note ssh -tt -R did not forward: $(head -c 300 "$tmp/ssh/nodelay.log")"
  [ -n "$ssh_note" ] && say "compare.sh: $ssh_note"
fi

# ---- Portico: edge, a registered connector, a passthrough app to the backend ----
edir=$tmp/edge
cdir=$tmp/connector
mkdir -p "$edir" "$cdir"
chmod 700 "$cdir"
cat >"$edir/edge.json" <<EOF
{
  "listen": ["127.0.0.1:$P_EDGE"],
  "edge_host": "localhost",
  "default_domain": "apps.localhost",
  "tls": {"cert": "$tmp/certs/leaf.crt", "key": "$tmp/certs/leaf.key"},
  "advertise": ["localhost:$P_EDGE"],
  "state_dir": "$edir/state",
  "admin": {"socket": "$edir/admin.sock", "socket_mode": "0600"},
  "log": {"level": "$LOG_LEVEL", "file": "$edir/edge.log"},
  "limits": {"max_connections": 30000, "max_unauthenticated": 20000,
             "max_unauthenticated_per_address": 20000, "handshake_timeout": "60s"}
}
EOF
(
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  exec "$EDGE_BIN" --config "$edir/edge.json"
) >"$edir/stdout" 2>&1 &
PID_EDGE=$!
pids+=("$PID_EDGE")
portico_note=""
i=0
while [ $i -lt 100 ] && [ ! -S "$edir/admin.sock" ] && kill -0 "$PID_EDGE" 2>/dev/null; do
  sleep 0.1
  i=$((i + 1))
done
wait_port "$P_EDGE" "$PID_EDGE" || portico_note="the edge did not start: $(tail -c 300 "$edir/stdout")"
cli() { "$CLI_BIN" --socket "$edir/admin.sock" "$@"; }
# Two connectors: the one the comparison uses (group Default, app hello, TUNNELS tunnels) and
# one for the streams curve (group Curve, app curve, exactly one tunnel).
# register_connector DIR GROUP TUNNELS: writes DIR/connector.json and registers; prints why not
register_connector() {
  local token
  mkdir -p "$1"
  chmod 700 "$1"
  # the token stays in a variable (never on a command line other than the connector's)
  token=$(cli --json token create --group "$2" --expires 10m |
    sed -n 's/.*"token":"\(ptk_[A-Za-z0-9_-]*\)".*/\1/p')
  cat >"$1/connector.json" <<EOF
{
  "credentials": "$1/credentials.json",
  "ca_file": "$CA",
  "tunnels_per_edge": $3,
  "log": {"level": "$LOG_LEVEL", "file": "$1/connector.log"}
}
EOF
  if [ -z "$token" ]; then
    echo "token create gave no token"
    return 1
  fi
  if ! "$CONN_BIN" register --config "$1/connector.json" --edge "https://localhost:$P_EDGE" \
    --token "$token" --ca-file "$CA" >"$1/register.out" 2>&1; then
    echo "connector register failed: $(tail -c 300 "$1/register.out")"
    return 1
  fi
}
# start_connector DIR: sets conn_pid
start_connector() {
  (
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    exec "$CONN_BIN" run --config "$1/connector.json"
  ) >"$1/stdout" 2>&1 &
  conn_pid=$!
  pids+=("$conn_pid")
}
# true once the edge lists 2 active connectors with $1 tunnels in all
tunnels_up() {
  cli --json connector list 2>/dev/null | node -e '
    let s = "";
    process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const c = JSON.parse(s).connectors || [];
      const n = c.reduce((a, x) => a + (x.status === "active" ? x.tunnels : 0), 0);
      process.exit(c.length === 2 && n === Number(process.argv[1]) ? 0 : 1);
    });' "$1"
}
PID_CONN=""
PID_CURVE_CONN=""
ccdir=$tmp/connector-curve
if [ -z "$portico_note" ]; then
  cli group add Curve >"$edir/group.out" 2>&1 || portico_note="group add failed: $(cat "$edir/group.out")"
fi
[ -z "$portico_note" ] && { portico_note=$(register_connector "$cdir" Default "$TUNNELS") || true; }
[ -z "$portico_note" ] && { portico_note=$(register_connector "$ccdir" Curve 1) || true; }
if [ -z "$portico_note" ]; then
  start_connector "$cdir"
  PID_CONN=$conn_pid
  start_connector "$ccdir"
  PID_CURVE_CONN=$conn_pid
  cli app add hello --internal-url "http://127.0.0.1:$P_BACKEND/" --pre-auth passthrough \
    >"$edir/app.out" 2>&1 || portico_note="app add hello failed: $(cat "$edir/app.out")"
  cli app add curve --internal-url "http://127.0.0.1:$P_BACKEND/" --pre-auth passthrough \
    --group Curve >"$edir/app.out" 2>&1 || portico_note="app add curve failed: $(cat "$edir/app.out")"
  i=0
  until tunnels_up $((TUNNELS + 1)); do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
      portico_note="the connectors did not bring up $((TUNNELS + 1)) tunnels"
      break
    fi
    sleep 0.2
  done
fi
APP_HOST=hello.apps.localhost
CURVE_HOST=curve.apps.localhost

# ---- the setups: URL, extra wrk header, processes to account CPU to ----
declare -A URL HDR NOTE
declare -A R # R[setup|metric|workload|rep] = value, R[setup|metric] for single figures
URL[direct]=http://127.0.0.1:$P_BACKEND
URL[nginx-tls]=https://127.0.0.1:$P_NGX_DIRECT
URL[ssh-plain]=https://127.0.0.1:$P_NGX_SSH
URL[ssh-nodelay]=https://127.0.0.1:$P_NGX_SSHND
URL[portico]=https://127.0.0.1:$P_EDGE
HDR[portico]="Host: $APP_HOST"
[ -n "$ssh_note" ] && NOTE[ssh-plain]=$ssh_note && NOTE[ssh-nodelay]=$ssh_note
[ -n "$portico_note" ] && NOTE[portico]=$portico_note

# Roles, for the CPU rows: front (nginx-tls or portico-edge), sshd, tunnel client (ssh or
# portico-connector), backend. Each is a process tree (nginx master + worker, sshd and its
# session processes).
role_pid() { # $1 setup, $2 role
  case "$1:$2" in
    *:backend) echo "$PID_BACKEND" ;;
    nginx-tls:front | ssh-*:front) echo "$PID_PROXY" ;;
    portico:front) echo "$PID_EDGE" ;;
    ssh-*:sshd) echo "$PID_SSHD" ;;
    ssh-plain:client) echo "$PID_SSH_PLAIN" ;;
    ssh-nodelay:client) echo "$PID_SSH_ND" ;;
    portico:client) echo "$PID_CONN" ;;
    *) echo "" ;;
  esac
}
ROLES="front sshd client backend"
CLK_TCK=$(getconf CLK_TCK)

# utime + stime in clock ticks of the tree rooted at $1
tree_ticks() {
  [ -n "$1" ] || { echo 0; return; }
  local all p t=0 f
  all=$(ps -e -o pid=,ppid= | awk -v r="$1" '
    { kid[$2] = kid[$2] " " $1 }
    END { q[1] = r; n = 1; for (i = 1; i <= n; i++) { print q[i]; m = split(kid[q[i]], k, " ");
          for (j = 1; j <= m; j++) q[++n] = k[j] } }')
  for p in $all; do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    f=${f##*) }
    # after the command: state(3) ppid(4) ... utime(14) stime(15): fields 12 and 13 here
    t=$((t + $(echo "$f" | awk '{print $12 + $13}')))
  done
  echo "$t"
}

# curl preflight: the body of /hello and the size of /1m.bin through a setup
preflight() { # $1 setup
  local u=${URL[$1]} h=() body size
  [ -n "${HDR[$1]:-}" ] && h=(-H "${HDR[$1]}")
  body=$(curl -sS --max-time 10 --cacert "$CA" "${h[@]}" "$u/hello" 2>&1)
  [ "$body" = "hello world" ] || { echo "GET /hello: $body" | head -c 300; return 1; }
  size=$(curl -sS --max-time 30 --cacert "$CA" "${h[@]}" -o /dev/null -w '%{size_download}' "$u/1m.bin" 2>&1)
  [ "$size" = 1048576 ] || { echo "GET /1m.bin: $size" | head -c 300; return 1; }
}
declare -a SETUPS=()
for s in $ALL_SETUPS; do
  case " $ONLY " in *" $s "*) ;; *) continue ;; esac
  if [ -z "${NOTE[$s]:-}" ]; then
    if ! msg=$(preflight "$s"); then NOTE[$s]="preflight failed: $msg"; fi
  fi
  if [ -n "${NOTE[$s]:-}" ]; then say "compare.sh: $s skipped: ${NOTE[$s]}"; else SETUPS+=("$s"); fi
done

# ---- 3. memory: idle TLS keep-alive connections at nginx-tls and at the edge, measured
# first, on fresh processes (after a load run, freed heap would absorb the new connections) ----
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
idle_conns() { # $1 setup, $2 pid to sample, $3 port
  local h=() out
  [ -n "${HDR[$1]:-}" ] && h=(--host-header "$APP_HOST")
  if out=$(node "$here/idle_tls.mjs" --port "$3" --pid "$2" --servername localhost --ca "$CA" \
    -n "$IDLE_CONNS" -c 50 --settle 2 "${h[@]}" 2>&1); then
    R[$1|idle_kib]=$(echo "$out" | sed -n 's/.*per_conn_kib=\([0-9.-]*\).*/\1/p')
    say "  $1 idle: $out"
  else
    say "  $1 idle: failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
  fi
}
if [ "$IDLE_CONNS" -gt 0 ]; then
  say "idle TLS keep-alive connections: $IDLE_CONNS"
  for s in "${SETUPS[@]}"; do
    case $s in
      nginx-tls) idle_conns "$s" "$(ps --ppid "$PID_PROXY" -o pid= | head -n 1 | tr -d ' ')" "$P_NGX_DIRECT" ;;
      portico) idle_conns "$s" "$PID_EDGE" "$P_EDGE" ;;
    esac
  done
fi

# ---- 4. the wrk workloads ----
# name: threads connections path extra-header
declare -A WL_T WL_C WL_P WL_H
ALL_WORKLOADS="small64 small1 big64 big1 newconn"
WORKLOADS=${WORKLOADS-$ALL_WORKLOADS}
for w in $WORKLOADS; do
  case " $ALL_WORKLOADS " in *" $w "*) ;; *) die "WORKLOADS: unknown workload $w (known: $ALL_WORKLOADS)" ;; esac
done
WL_T[small64]=2 WL_C[small64]=64 WL_P[small64]=/hello
WL_T[small1]=1 WL_C[small1]=1 WL_P[small1]=/hello # wrk needs connections >= threads
WL_T[big64]=2 WL_C[big64]=64 WL_P[big64]=/1m.bin
WL_T[big1]=1 WL_C[big1]=1 WL_P[big1]=/1m.bin
WL_T[newconn]=2 WL_C[newconn]=64 WL_P[newconn]=/hello WL_H[newconn]="Connection: close"

to_ms() { # wrk latency ("850.00us", "1.23ms", "2.00s") to ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
wrk_errors_total=0
run_wrk() { # $1 setup, $2 workload, $3 rep
  local s=$1 w=$2 rep=$3 out args=() role before after
  args=(-t "${WL_T[$w]}" -c "${WL_C[$w]}" -d "${DURATION}s" --timeout 10s --latency)
  [ -n "${HDR[$s]:-}" ] && args+=(-H "${HDR[$s]}")
  [ -n "${WL_H[$w]:-}" ] && args+=(-H "${WL_H[$w]}")
  declare -A c0
  for role in $ROLES; do c0[$role]=$(tree_ticks "$(role_pid "$s" "$role")"); done
  out=$(wrk "${args[@]}" "${URL[$s]}${WL_P[$w]}" 2>&1)
  local reqs rps p50 p99 errs mibs mib units
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  # "N requests in 10.00s, 1.23GB read": bytes read (wrk's units are binary) per second
  mibs=$(echo "$out" | awk '/requests in/ {
    t = $4 + 0; if ($4 ~ /ms,$/) t /= 1000; else if ($4 ~ /m,$/) t *= 60
    b = $5 + 0; u = $5; sub(/^[0-9.]+/, "", u)
    if (u == "KB") b *= 1024; else if (u == "MB") b *= 1048576; else if (u == "GB") b *= 1073741824
    else if (u == "TB") b *= 1099511627776
    if (t > 0) printf "%.3f %.3f", b / 1048576 / t, b / 1048576 }')
  mib=${mibs#* }
  mibs=${mibs% *}
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errs=$(echo "$out" | awk '/Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 }
                            /Non-2xx or 3xx/ { n += $NF } END { print n + 0 }')
  echo "$out" >"$tmp/wrk-$s-$w-$rep.txt"
  # a short 1 MiB run on a slow setup may complete no response: its MiB/s still stands
  if [ -z "$rps" ] || [ -z "$reqs" ] || { [ "$reqs" -eq 0 ] && [ "${WL_P[$w]}" != /1m.bin ]; }; then
    say "  $s $w: wrk gave no figures: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    return
  fi
  R[$s|rps|$w|$rep]=$rps
  R[$s|mibs|$w|$rep]=$mibs
  # CPU is per request; for the 1 MiB workloads, per MiB read (responses in progress at the
  # end of a short run would otherwise count for nothing)
  units=$reqs
  [ "${WL_P[$w]}" = /1m.bin ] && units=$mib
  R[$s|p50|$w|$rep]=$(to_ms "$p50")
  R[$s|p99|$w|$rep]=$(to_ms "$p99")
  R[$s|errs|$w|$rep]=$errs
  [ "$errs" -gt 0 ] && wrk_errors_total=$((wrk_errors_total + errs))
  for role in $ROLES; do
    [ -n "$(role_pid "$s" "$role")" ] || continue
    after=$(tree_ticks "$(role_pid "$s" "$role")")
    before=${c0[$role]}
    R[$s|cpu-$role|$w|$rep]=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="$units" \
      'BEGIN { if (n > 0) printf "%.4f", d / hz / n * 10000 }')
  done
  say "  $s $w rep $rep: $rps req/s, $mibs MiB/s, p50 $p50, p99 $p99, errors $errs"
}

say "wrk: ${DURATION} s per run, $REPS repetition(s), setups: ${SETUPS[*]}"
for rep in $(seq 1 "$REPS"); do
  for w in $WORKLOADS; do
    for s in "${SETUPS[@]}"; do
      run_wrk "$s" "$w" "$rep"
    done
  done
done

# ---- 5. memory: 1,000 connectors' tunnels at an edge (tunnels_bench.sh) ----
if [ "$CONNECTORS" -gt 0 ] && [ -z "${portico_note:-}" ] && [[ " ${SETUPS[*]} " == *" portico "* ]]; then
  say "tunnels_bench.sh $CONNECTORS (its own edge, on a kernel-chosen loopback port)"
  if out=$(BUILD=$BUILD IDLE=5 KEEP='' TUNNELS_PER_CONNECTOR=$TUNNELS \
    sh "$here/tunnels_bench.sh" "$CONNECTORS" 2>&1); then
    R[portico|tunnel_kib]=$(echo "$out" | sed -n 's/^edge RSS per tunnel: .* KiB all up, \([0-9.]*\) KiB after idle.*/\1/p')
    R[portico|tunnels_mib]=$(echo "$out" | sed -n 's/^edge RSS total: *\([0-9.]*\) MiB.*/\1/p')
    R[portico|tunnels_n]=$(echo "$out" | sed -n 's/^edge RSS total: .* with \([0-9]*\) tunnels.*/\1/p')
    echo "$out" >"$tmp/tunnels_bench.txt"
    say "  $(echo "$out" | grep -E '^edge RSS (per tunnel|total)' | tr '\n' ' ')"
  else
    say "  tunnels_bench.sh failed: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
  fi
fi

# ---- 6. cost per request against concurrent streams on one tunnel (Portico) ----
# For each concurrency N: wrk with N connections on the app "curve" (its connector keeps one
# tunnel); after a warm-up long enough for the N TLS handshakes, the CPU of the edge, the
# connector and the backend and the backend's request counter (nginx stub_status) are
# sampled over DURATION seconds, so handshakes do not count: steady-state cost only. wrk's
# errors cover the whole run, warm-up included.
backend_requests() { # the backend's request counter (this request included); empty on failure
  local i v
  for i in 1 2 3; do
    v=$(curl -s --max-time 5 "http://127.0.0.1:$P_BACKEND/status" | awk 'NR == 3 { print $3 }')
    [ -n "$v" ] && { echo "$v"; return; }
  done
}
now_s() { date +%s.%N; }
edge_accepted() { # the edge's connections accepted since it started; empty on failure
  cli --json status 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      try { console.log(JSON.parse(s).connections_total); } catch { } });'
}
curve_wrk_pid=""
CURVE_WARM_MAX=${CURVE_WARM_MAX:-180}
curve_point() { # $1: concurrency
  local n=$1 t=2 r0 r1 t0 t1 e0 e1 c0 c1 b0 b1 start cur waited=0
  local a_start a_prev a_cur a0 a1
  [ "$n" -lt 2 ] && t=1
  a_start=$(edge_accepted) # before wrk connects
  wrk -t "$t" -c "$n" -d "$((CURVE_WARM_MAX + DURATION + 30))s" --timeout 10s \
    -H "Host: $CURVE_HOST" "https://127.0.0.1:$P_EDGE/hello" >"$tmp/wrk-curve-$n.txt" 2>&1 &
  curve_wrk_pid=$!
  # Warm-up: until the backend has answered 2 N requests of this run, the edge has accepted
  # the N connections and no new connection came in the last second (no TLS handshake
  # left to count), at least 2 s, at most CURVE_WARM_MAX s.
  start=$(backend_requests) a_prev=""
  while [ "$waited" -lt "$CURVE_WARM_MAX" ]; do
    sleep 1
    waited=$((waited + 1))
    cur=$(backend_requests) a_cur=$(edge_accepted)
    if [ "$waited" -ge 2 ] && [ -n "$start" ] && [ -n "$cur" ] && [ $((cur - start)) -ge $((2 * n)) ] &&
      [ -n "$a_start" ] && [ -n "$a_cur" ] && [ $((a_cur - a_start)) -ge "$n" ] &&
      [ "$a_cur" = "$a_prev" ]; then
      break
    fi
    a_prev=$a_cur
  done
  t0=$(now_s) r0=$(backend_requests) a0=$(edge_accepted)
  e0=$(tree_ticks "$PID_EDGE") c0=$(tree_ticks "$PID_CURVE_CONN") b0=$(tree_ticks "$PID_BACKEND")
  sleep "$DURATION"
  t1=$(now_s) r1=$(backend_requests) a1=$(edge_accepted)
  e1=$(tree_ticks "$PID_EDGE") c1=$(tree_ticks "$PID_CURVE_CONN") b1=$(tree_ticks "$PID_BACKEND")
  kill -INT "$curve_wrk_pid" 2>/dev/null
  wait "$curve_wrk_pid"
  curve_wrk_pid=""
  [ -n "$r1" ] && r1=$((r1 - 1)) # the second status request counts itself
  if [ -z "$r0" ] || [ -z "$r1" ] || [ "$r1" -le "$r0" ]; then
    say "  curve $n: no requests reached the backend in $DURATION s after a ${waited} s warm-up: $(tail -n 3 "$tmp/wrk-curve-$n.txt" | tr '\n' ' ')"
    return
  fi
  local errs
  errs=$(awk '/Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 }
              /Non-2xx or 3xx/ { n += $NF } END { print n + 0 }' "$tmp/wrk-curve-$n.txt")
  R[curve|$n]=$(awk -v r=$((r1 - r0)) -v t0="$t0" -v t1="$t1" -v e=$((e1 - e0)) -v c=$((c1 - c0)) \
    -v b=$((b1 - b0)) -v hz="$CLK_TCK" -v errs="$errs" -v w="$waited" -v nc=$((${a1:-0} - ${a0:-0})) 'BEGIN {
      k = 10000 / r / hz
      printf "%.0f %.4f %.4f %.4f %.4f %d %d %d", r / (t1 - t0), e * k, c * k, b * k, (e + c + b) * k, errs, w, nc }')
  say "  curve $n streams: ${R[curve|$n]} (req/s; CPU s/10k req: edge connector backend all; errors; warm-up s; new connections while sampled)"
}
if [ -n "$CURVE" ] && [[ " ${SETUPS[*]} " == *" portico "* ]]; then
  say "streams curve on one tunnel: $CURVE"
  for n in $CURVE; do curve_point "$n"; done
fi

# ---- 7. the table ----
tls_params() { # $1 port: "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519"
  openssl s_client -connect "127.0.0.1:$1" -servername localhost -CAfile "$CA" </dev/null 2>/dev/null |
    awk '/^New, / { gsub(",", ""); p = $2 " " $5 } /^Server Temp Key:/ { gsub(",", ""); k = $4 }
         END { print p " " k }'
}
median() { # values on stdin, one a line; prints the median (lower middle for an even count)
  sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
fig() { # $1 setup, $2 metric, $3 workload: median over the repetitions, or empty
  local rep
  for rep in $(seq 1 "$REPS"); do
    [ -n "${R[$1|$2|$3|$rep]:-}" ] && echo "${R[$1|$2|$3|$rep]}"
  done | median
}
ratio() { # Portico / peer
  if [ -z "$1" ] || [ -z "$2" ]; then echo "-"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2fx", a / b }'
}
fmt() { # $1 value, $2 decimals
  [ -n "$1" ] || { echo "-"; return; }
  awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'
}
check() { # $1 value, $2 op (ge|le), $3 threshold: met / NOT met / n/a
  [ -n "$1" ] || { echo "n/a"; return; }
  awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
    ok = (op == "ge") ? (v >= t) : (v <= t); print ok ? "met" : "NOT met" }'
}
W=34
row() { # label direct nginx-tls ssh-plain ssh-nodelay portico r1 r2 r3 target
  printf "%-${W}s %9s %9s %9s %9s %9s | %7s %7s %7s | %s\n" "$@"
}
# prints one figure row: $1 label, $2 metric, $3 workload, $4 decimals, $5 target text
fig_row() {
  local v=() s val
  for s in $ALL_SETUPS; do
    val=""
    [[ " ${SETUPS[*]} " == *" $s "* ]] && val=$(fig "$s" "$2" "$3")
    v+=("$val")
  done
  local d=${v[0]} n=${v[1]} sp=${v[2]} sn=${v[3]} p=${v[4]}
  row "$1" "$(fmt "$d" "$4")" "$(fmt "$n" "$4")" "$(fmt "$sp" "$4")" "$(fmt "$sn" "$4")" \
    "$(fmt "$p" "$4")" "$(ratio "$p" "$n")" "$(ratio "$p" "$sp")" "$(ratio "$p" "$sn")" "${5:-}"
}
big_row() { # $1 label, $2 workload, $3 target
  local v=() s val
  for s in $ALL_SETUPS; do
    val=""
    [[ " ${SETUPS[*]} " == *" $s "* ]] && val=$(fig "$s" mibs "$2")
    v+=("$val")
  done
  row "$1" "$(fmt "${v[0]}" 1)" "$(fmt "${v[1]}" 1)" "$(fmt "${v[2]}" 1)" "$(fmt "${v[3]}" 1)" \
    "$(fmt "${v[4]}" 1)" "$(ratio "${v[4]}" "${v[1]}")" "$(ratio "${v[4]}" "${v[2]}")" \
    "$(ratio "${v[4]}" "${v[3]}")" "${3:-}"
}
cpu_all() { # $1 setup, $2 workload: the sum of the roles' medians
  local r t="" x
  for r in $ROLES; do
    x=$(fig "$1" "cpu-$r" "$2")
    [ -n "$x" ] && t=$(awk -v a="${t:-0}" -v b="$x" 'BEGIN { printf "%.4f", a + b }')
  done
  echo "$t"
}
cpu_rows() { # $1 workload label, $2 workload
  local r s v=() val label
  for r in $ROLES all; do
    v=()
    for s in $ALL_SETUPS; do
      val=""
      if [[ " ${SETUPS[*]} " == *" $s "* ]]; then
        if [ "$r" = all ]; then val=$(cpu_all "$s" "$2"); else val=$(fig "$s" "cpu-$r" "$2"); fi
      fi
      v+=("$val")
    done
    case $r in
      front) label="  front (nginx-tls / edge)" ;;
      sshd) label="  sshd" ;;
      client) label="  ssh client / connector" ;;
      backend) label="  backend nginx" ;;
      all) label="  all processes" ;;
    esac
    row "$label" "$(fmt "${v[0]}" 3)" "$(fmt "${v[1]}" 3)" "$(fmt "${v[2]}" 3)" "$(fmt "${v[3]}" 3)" \
      "$(fmt "${v[4]}" 3)" "$(ratio "${v[4]}" "${v[1]}")" "$(ratio "${v[4]}" "${v[2]}")" \
      "$(ratio "${v[4]}" "${v[3]}")" ""
  done
}

p_small64=$(fig portico rps small64)
sn_small64=$(fig ssh-nodelay rps small64)
p_big64=$(fig portico mibs big64)
sn_big64=$(fig ssh-nodelay mibs big64)
p_p99=$(fig portico p99 small1)
n_p99=$(fig nginx-tls p99 small1)
p_new=$(fig portico rps newconn)
n_new=$(fig nginx-tls rps newconn)
# the streams curve: the cost (all processes) at the largest concurrency over the cheapest point
curve_growth=""
curve_last=""
if [ -n "${CURVE:-}" ]; then
  for n in $CURVE; do [ -n "${R[curve|$n]:-}" ] && curve_last=$n; done
  if [ -n "$curve_last" ]; then
    curve_growth=$(for n in $CURVE; do [ -n "${R[curve|$n]:-}" ] && echo "${R[curve|$n]}"; done |
      awk -v last="$(echo "${R[curve|$curve_last]}" | awk '{ print $5 }')" '
        NR == 1 || $5 < min { min = $5 } END { if (min > 0) printf "%.2f", last / min }')
  fi
fi
r_or_empty() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) print a / b }'; }

{
  echo
  echo "Portico vs nginx-tls and nginx-tls + ssh -R, loopback, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "wrk: ${DURATION} s per run, median of $REPS; ratios are Portico / peer (for latency and CPU, lower is better)"
  [[ " ${SETUPS[*]} " == *" nginx-tls "* ]] && echo "TLS nginx-tls: $(tls_params "$P_NGX_DIRECT")"
  [[ " ${SETUPS[*]} " == *" portico "* ]] && echo "TLS Portico:   $(tls_params "$P_EDGE")"
  echo
  row "figure" "direct" "nginx-tls" "ssh-R" "ssh-R-nd" "Portico" "/ngx" "/ssh" "/ssh-nd" "target"
  printf '%s\n' "$(printf '%.0s-' $(seq 1 130))"
  fig_row "small/64 conns, req/s" rps small64 0 \
    "≥1.5x ssh-R-nd: $(check "$(r_or_empty "$p_small64" "$sn_small64")" ge 1.5)"
  fig_row "small/1 conn, req/s" rps small1 0
  fig_row "small/1 conn, p50 ms" p50 small1 3
  fig_row "small/1 conn, p99 ms" p99 small1 3 \
    "p99 ≤1.5x nginx-tls: $(check "$(r_or_empty "$p_p99" "$n_p99")" le 1.5)"
  big_row "1 MiB/64 conns, MiB/s" big64 \
    "≥2x ssh-R-nd: $(check "$(r_or_empty "$p_big64" "$sn_big64")" ge 2)"
  big_row "1 MiB/1 conn, MiB/s" big1
  fig_row "new conn per request/64, req/s" rps newconn 0 \
    "≥0.8x nginx-tls: $(check "$(r_or_empty "$p_new" "$n_new")" ge 0.8)"
  row "idle TLS keep-alive conn, KiB each" "-" "$(fmt "${R[nginx-tls|idle_kib]:-}" 1)" "-" "-" \
    "$(fmt "${R[portico|idle_kib]:-}" 1)" "$(ratio "${R[portico|idle_kib]:-}" "${R[nginx-tls|idle_kib]:-}")" \
    "-" "-" "≤40 KiB: $(check "${R[portico|idle_kib]:-}" le 40)"
  row "${R[portico|tunnels_n]:-N} tunnels: edge RSS, MiB" "-" "-" "-" "-" \
    "$(fmt "${R[portico|tunnels_mib]:-}" 1)" "-" "-" "-" \
    "≤64 MiB for 1,000 connectors, $TUNNELS tunnels each: $(if [ "$CONNECTORS" -ge 1000 ]; then
      check "${R[portico|tunnels_mib]:-}" le 64; else echo "n/a (fewer than 1,000)"; fi)"
  row "  edge RSS per tunnel, KiB" "-" "-" "-" "-" "$(fmt "${R[portico|tunnel_kib]:-}" 1)" "-" "-" "-" ""
  row "cost at ${curve_last:-N} streams / cheapest" "-" "-" "-" "-" "${curve_growth:+${curve_growth}x}" \
    "-" "-" "-" "flat (≤1.5x): $(check "$curve_growth" le 1.5)"
  echo "CPU seconds per 10,000 requests (utime+stime of each process tree during the wrk run), small/64:"
  cpu_rows "small/64" small64
  echo " 1 MiB/64 (per 10,000 MiB read):"
  cpu_rows "1 MiB/64" big64
  echo " new connection per request/64:"
  cpu_rows "new conn/64" newconn
  echo " small/1:"
  cpu_rows "small/1" small1
  echo " 1 MiB/1 (per 10,000 MiB read):"
  cpu_rows "1 MiB/1" big1
  if [ -n "$curve_last" ]; then
    echo "Cost per request vs concurrent streams on one tunnel (Portico, /hello; CPU s per 10,000 requests, steady state):"
    printf '  %8s %9s %9s %9s %9s %9s %8s %7s %9s %11s\n' streams req/s edge connector backend all \
      errors warm-up new-conns "/cheapest"
    cheapest=$(for n in $CURVE; do [ -n "${R[curve|$n]:-}" ] && echo "${R[curve|$n]}"; done |
      awk 'NR == 1 || $5 < m { m = $5 } END { print m }')
    for n in $CURVE; do
      [ -n "${R[curve|$n]:-}" ] || { printf '  %8s %9s\n' "$n" "failed"; continue; }
      # shellcheck disable=SC2086 # the figures are words
      set -- ${R[curve|$n]}
      printf '  %8s %9s %9.3f %9.3f %9.3f %9.3f %8s %6ss %9s %10.2fx\n' "$n" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" \
        "$(awk -v a="$5" -v b="$cheapest" 'BEGIN { print (b > 0) ? a / b : 0 }')"
    done
  fi
  echo
  echo "Columns: direct = wrk -> backend nginx (plain HTTP, the limit); nginx-tls = wrk -> nginx TLS -> backend;"
  echo "ssh-R = nginx TLS -> ssh -N -R -> backend; ssh-R-nd = nginx TLS -> ssh -tt -R (TCP_NODELAY) -> backend;"
  echo "Portico = wrk -> portico-edge (TLS) -> tunnel -> portico-connector -> backend (passthrough app)."
  [ "$wrk_errors_total" -gt 0 ] && echo "wrk reported $wrk_errors_total errors or non-2xx responses: see the run log"
  for s in $ALL_SETUPS; do
    [ -n "${NOTE[$s]:-}" ] && echo "$s: not run: ${NOTE[$s]}"
  done
} | tee "$tmp/table.txt"
if [ -n "${RESULTS_OUT:-}" ]; then cp "$tmp/table.txt" "$RESULTS_OUT"; fi
exit 0
