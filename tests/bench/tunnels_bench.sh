#!/bin/sh
# SPDX-License-Identifier: MIT
#
# tests/bench/tunnels_bench.sh [N]: N simulated connectors (default 1000), two tunnels each,
# against a real portico-edge on loopback; prints handshakes per second and the edge's RSS
# per tunnel (tests/bench/README.md). It builds what it needs, makes a throwaway CA, edge
# certificate, edge.json and state directory in a temporary directory, starts the edge,
# mints one registration token with N uses through the admin CLI, runs
# tunnels_bench (which registers the N connectors and opens their tunnels), and stops the
# edge by its PID. Nothing outside the temporary directory is touched.
#
# Environment: BUILD (build directory, default build), CONCURRENCY (tunnel handshakes in
# flight, default 64), IDLE (seconds to hold the tunnels, default 5), TUNNELS_PER_CONNECTOR
# (default 2, as the real connector's tunnels_per_edge), KEEP=1 (keep the
# temporary directory, with the edge's log), EDGE_WRAPPER (a command put in front of the edge,
# for example "valgrind --tool=massif --massif-out-file=/tmp/edge.massif"; the figures then
# measure the wrapper too).
set -eu

N=${1:-1000}
BUILD=${BUILD:-build}
CONCURRENCY=${CONCURRENCY:-64}
IDLE=${IDLE:-5}
PER=${TUNNELS_PER_CONNECTOR:-2}
EDGE_HOST=edge.test

case $N in
'' | *[!0-9]*)
    echo "usage: $0 [N]  (N connectors, 1..10000)" >&2
    exit 2
    ;;
esac
# One token serves every registration, and a token allows at most 10,000 uses.
if [ "$N" -lt 1 ] || [ "$N" -gt 10000 ]; then
    echo "usage: $0 [N]  (N connectors, 1..10000)" >&2
    exit 2
fi

root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$root"

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" >/dev/null
fi
if ! out=$(ninja -C "$BUILD" edge/portico-edge edge/cli/portico tests/bench/tunnels_bench 2>&1); then
    printf '%s\n' "$out" >&2
    echo "tunnels_bench.sh: the build failed" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/portico-tunnels-bench.XXXXXX")
edge_pid=""

stop_edge() {
    if [ -n "$edge_pid" ] && kill -0 "$edge_pid" 2>/dev/null; then
        kill -TERM "$edge_pid" 2>/dev/null || true
        i=0
        while kill -0 "$edge_pid" 2>/dev/null && [ "$i" -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        if kill -0 "$edge_pid" 2>/dev/null; then
            echo "tunnels_bench.sh: the edge ignored SIGTERM for 10 s; killing it" >&2
            kill -KILL "$edge_pid" 2>/dev/null || true
        fi
        wait "$edge_pid" 2>/dev/null || true
    fi
    edge_pid=""
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    stop_edge
    if [ -n "${KEEP:-}" ]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- certificates: a CA and an edge certificate for edge.test and 127.0.0.1 (EC P-256) ----
(
    cd "$tmp"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=Portico Bench CA" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign -out ca.crt 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out edge.key 2>/dev/null
    openssl req -new -key edge.key -subj "/CN=$EDGE_HOST" -out edge.csr 2>/dev/null
    printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$EDGE_HOST" \
        >edge.ext
    openssl x509 -req -in edge.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -sha256 -extfile edge.ext -out edge.crt 2>/dev/null
)

# ---- edge.json: limits wide enough for N tunnels from one address ----
case $PER in
'' | *[!0-9]*)
    echo "TUNNELS_PER_CONNECTOR must be a number (1..16)" >&2
    exit 2
    ;;
esac
limit=$((2 * N * PER + 1000))
cat >"$tmp/edge.json" <<EOF
{
  "listen": ["127.0.0.1:0"],
  "edge_host": "$EDGE_HOST",
  "default_domain": "apps.$EDGE_HOST",
  "tls": {"cert": "$tmp/edge.crt", "key": "$tmp/edge.key"},
  "state_dir": "$tmp/state",
  "admin": {"socket": "$tmp/admin.sock", "socket_mode": "0600"},
  "log": {"level": "info", "file": "$tmp/edge.log"},
  "limits": {"max_connections": $limit, "max_tunnels": $limit,
             "max_unauthenticated": $limit, "max_unauthenticated_per_address": $limit,
             "ping_interval": "2s", "idle_timeout": "10s", "drain_timeout": "2s"}
}
EOF

# ---- the edge, with room for N descriptors ----
(
    # shellcheck disable=SC3045 # dash, bash and busybox sh all have ulimit -n and -H
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    # shellcheck disable=SC2086 # the wrapper is a command line: split it into words
    exec ${EDGE_WRAPPER:-} "$BUILD/edge/portico-edge" --config "$tmp/edge.json"
) >"$tmp/edge.out" 2>&1 &
edge_pid=$!

port=""
i=0
while [ "$i" -lt 100 ]; do
    if ! kill -0 "$edge_pid" 2>/dev/null; then
        echo "tunnels_bench.sh: the edge exited:" >&2
        cat "$tmp/edge.out" "$tmp/edge.log" >&2 2>/dev/null || true
        edge_pid=""
        exit 1
    fi
    if [ -f "$tmp/edge.log" ] && grep -q '"event":"edge_started"' "$tmp/edge.log" &&
        [ -S "$tmp/admin.sock" ]; then
        port=$(grep '"event":"listener_started"' "$tmp/edge.log" | head -n 1 |
            sed -n 's/.*"port":\([0-9][0-9]*\).*/\1/p')
        break
    fi
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$port" ]; then
    echo "tunnels_bench.sh: the edge did not start within 10 s" >&2
    exit 1
fi
echo "edge: pid $edge_pid, 127.0.0.1:$port, descriptor limit $(awk '/Max open files/ {print $4}' "/proc/$edge_pid/limits")"

# ---- one token for all N registrations (kept in a 0600 file, never on a command line) ----
umask 077
"$BUILD/edge/cli/portico" --socket "$tmp/admin.sock" --json token create --group Default \
    --uses "$N" --expires 1h >"$tmp/token.json"
sed -n 's/.*"token":"\(ptk_[A-Za-z0-9_-]*\)".*/\1/p' "$tmp/token.json" >"$tmp/token"
rm -f "$tmp/token.json"
if [ ! -s "$tmp/token" ]; then
    echo "tunnels_bench.sh: token create gave no token" >&2
    exit 1
fi

# ---- the benchmark ----
rc=0
"$BUILD/tests/bench/tunnels_bench" --host 127.0.0.1 --port "$port" --server-name "$EDGE_HOST" \
    --ca "$tmp/ca.crt" --token-file "$tmp/token" --edge-pid "$edge_pid" -n "$N" \
    --concurrency "$CONCURRENCY" --idle "$IDLE" --tunnels-per-connector "$PER" || rc=$?

# The edge's own account: every tunnel it brought up, and any handshake it refused.
up=$(grep -c '"event":"tunnel_up"' "$tmp/edge.log" || true)
refused=$(grep -c '"event":"tunnel_handshake_failed"' "$tmp/edge.log" || true)
echo "edge log:              $up tunnel_up, $refused tunnel_handshake_failed"
stop_edge
exit "$rc"
