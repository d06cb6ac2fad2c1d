#!/usr/bin/env bash
# `make demo`: installs what is missing, builds, and runs Portico on loopback: an edge, a
# registered connector, a sample backend, and a published passthrough app. Prints the URLs;
# Ctrl-C stops everything it started. State, certificates and logs go to .demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/deps.sh demo
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build

port=${PORTICO_DEMO_PORT:-8443}
backend_port=${PORTICO_DEMO_BACKEND_PORT:-8081}
demo=$top/.demo
edge=$top/build/edge/portico-edge
connector=$top/build/connector/portico-connector
cli=$top/build/edge/cli/portico
for b in "$edge" "$connector" "$cli"; do
  [ -x "$b" ] || { echo "demo: $b was not built" >&2; exit 1; }
done

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "demo: stopped (state and logs kept in .demo/)"
}
trap cleanup INT TERM EXIT

rm -rf "$demo"
mkdir -p "$demo/certs" "$demo/state" "$demo/connector"
chmod 700 "$demo/connector"

# A demo CA and one certificate for the edge host and every app under apps.localhost
# (browsers and curl resolve *.localhost to loopback).
(
  cd "$demo/certs"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=Portico demo CA" -out ca.crt \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  openssl ecparam -name prime256v1 -genkey -noout -out edge.key
  openssl req -new -key edge.key -subj "/CN=localhost" -out edge.csr
  printf 'subjectAltName=DNS:localhost,DNS:*.apps.localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > edge.ext
  openssl x509 -req -in edge.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -sha256 \
    -extfile edge.ext -out edge.crt
) 2>/dev/null

cat > "$demo/edge.json" <<JSON
{
  "listen": ["127.0.0.1:$port"],
  "edge_host": "localhost",
  "default_domain": "apps.localhost",
  "tls": {"cert": "certs/edge.crt", "key": "certs/edge.key"},
  "advertise": ["localhost:$port"],
  "state_dir": "state",
  "admin": {"socket": "admin.sock", "socket_mode": "0600"},
  "log": {"level": "info", "file": "edge.log"}
}
JSON
"$edge" --config "$demo/edge.json" &
pids+=($!)
export PORTICO_ADMIN_SOCKET=$demo/admin.sock
for _ in $(seq 100); do [ -S "$PORTICO_ADMIN_SOCKET" ] && break; sleep 0.1; done
"$cli" status >/dev/null

node "$top/deploy/demo/backend.mjs" "$backend_port" > "$demo/backend.log" &
pids+=($!)

token=$("$cli" --json token create --group Default --expires 10m | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
cat > "$demo/connector/connector.json" <<JSON
{
  "credentials": "credentials.json",
  "ca_file": "$demo/certs/ca.crt",
  "log": {"level": "info", "file": "$demo/connector.log"}
}
JSON
"$connector" register --config "$demo/connector/connector.json" --edge "https://localhost:$port" \
  --token "$token" --ca-file "$demo/certs/ca.crt"
"$connector" run --config "$demo/connector/connector.json" &
pids+=($!)

"$cli" app add hello --internal-url "http://127.0.0.1:$backend_port/" --pre-auth passthrough >/dev/null
for _ in $(seq 50); do
  "$cli" --json connector list | grep -q '"active"' && break
  sleep 0.1
done

cat <<MSG

Portico is running on loopback:
  edge        https://localhost:$port/healthz      (log: .demo/edge.log)
  connector   registered and connected            (log: .demo/connector.log)
  backend     http://127.0.0.1:$backend_port/ (private)  (log: .demo/backend.log)

Published app (passthrough):
  https://hello.apps.localhost:$port/

The certificates come from a demo CA at .demo/certs/ca.crt. To trust it:
  curl --cacert .demo/certs/ca.crt https://hello.apps.localhost:$port/
  chromium --ignore-certificate-errors-spki-list=$(openssl x509 -in "$demo/certs/edge.crt" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64) https://hello.apps.localhost:$port/

Admin CLI:  PORTICO_ADMIN_SOCKET=.demo/admin.sock build/edge/cli/portico connector list

Press Ctrl-C to stop.
MSG
wait "${pids[0]}"
