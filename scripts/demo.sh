#!/usr/bin/env bash
# `make demo`: installs what is missing, builds, and runs Portico on loopback: an edge, a
# registered connector, a sample backend, a sample OpenID provider (tests/idp/provider.mjs on
# 127.0.0.2) with a demo user, a published passthrough app and an app behind OIDC sign-in.
# Prints the URLs and the demo user's name and password; Ctrl-C stops everything it started.
# State, certificates and logs go to .demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/deps.sh demo
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build

port=${PORTICO_DEMO_PORT:-8443}
backend_port=${PORTICO_DEMO_BACKEND_PORT:-8081}
idp_port=${PORTICO_DEMO_IDP_PORT:-8082}
# The provider has an address of its own: cookies are per host, not per port.
idp_issuer=http://127.0.0.2:$idp_port
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
mkdir -p "$demo/certs" "$demo/state" "$demo/connector" "$demo/idp"
chmod 700 "$demo/connector" "$demo/idp"

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

# The sample identity provider: a demo user in the group the OIDC app admits, a guest who is
# not, and one confidential client for the edge. Passwords and the secret are fresh each run.
rand() { openssl rand -base64 18 | tr -d '/+=' | cut -c1-16; }
demo_password=$(rand)
guest_password=$(rand)
client_secret=$(rand)
printf '%s\n' "$client_secret" > "$demo/idp/client.secret"
chmod 600 "$demo/idp/client.secret"
cat > "$demo/idp/users.json" <<JSON
[
  {"username": "demo", "password": "$demo_password", "sub": "demo-0001", "email": "demo@example.com",
   "name": "Demo User", "groups": ["demo-users"]},
  {"username": "guest", "password": "$guest_password", "sub": "guest-0002", "email": "guest@example.com",
   "name": "Guest User", "groups": []}
]
JSON
cat > "$demo/idp/clients.json" <<JSON
[
  {"client_id": "portico-demo", "client_secret": "$client_secret",
   "token_endpoint_auth_method": "client_secret_basic",
   "redirect_uris": ["https://secure.apps.localhost:$port/.portico/callback",
                     "https://localhost:$port/.portico/callback"],
   "post_logout_redirect_uris": ["https://secure.apps.localhost:$port/", "https://localhost:$port/"]}
]
JSON
node "$top/tests/idp/provider.mjs" --issuer "$idp_issuer" --port "$idp_port" --host 127.0.0.2 \
  --users "$demo/idp/users.json" --clients "$demo/idp/clients.json" > "$demo/idp.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do grep -q '"idp_ready"' "$demo/idp.log" 2>/dev/null && break; sleep 0.1; done
grep -q '"idp_ready"' "$demo/idp.log" || { echo "demo: the identity provider did not start:" >&2; cat "$demo/idp.log" >&2; exit 1; }

cat > "$demo/edge.json" <<JSON
{
  "listen": ["127.0.0.1:$port"],
  "edge_host": "localhost",
  "default_domain": "apps.localhost",
  "tls": {"cert": "certs/edge.crt", "key": "certs/edge.key"},
  "advertise": ["localhost:$port"],
  "state_dir": "state",
  "admin": {"socket": "admin.sock", "socket_mode": "0600"},
  "log": {"level": "info", "file": "edge.log"},
  "idps": [{"name": "demo", "issuer": "$idp_issuer", "client_id": "portico-demo",
            "client_secret_file": "idp/client.secret",
            "token_endpoint_auth_method": "client_secret_basic",
            "scopes": ["openid", "email", "profile", "groups"], "groups_claim": "groups"}]
}
JSON
"$edge" --config "$demo/edge.json" &
edge_pid=$!
pids+=("$edge_pid")
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
"$cli" app add secure --internal-url "http://127.0.0.1:$backend_port/" --pre-auth oidc --set idp=demo \
  --set 'assignment={"users":[],"groups":["demo-users"]}' \
  --set 'sso_headers={"email":"X-Demo-Email","name":"X-Demo-Name"}' >/dev/null
for _ in $(seq 50); do
  "$cli" --json connector list | grep -q '"active"' && break
  sleep 0.1
done

cat <<MSG

Portico is running on loopback:
  edge        https://localhost:$port/healthz      (log: .demo/edge.log)
  connector   registered and connected            (log: .demo/connector.log)
  backend     http://127.0.0.1:$backend_port/ (private)  (log: .demo/backend.log)
  identity provider  $idp_issuer/  (sample OpenID provider, log: .demo/idp.log)

Published apps:
  https://hello.apps.localhost:$port/     passthrough
  https://secure.apps.localhost:$port/    OIDC sign-in; sign out at /.portico/logout
  https://localhost:$port/                My apps (the edge's portal)

Sign in as:
  user: demo    password: $demo_password    (assigned to "secure")
  user: guest   password: $guest_password    (not assigned: sees the 403 page)

The certificates come from a demo CA at .demo/certs/ca.crt. To trust it:
  curl --cacert .demo/certs/ca.crt https://hello.apps.localhost:$port/
  chromium --ignore-certificate-errors-spki-list=$(openssl x509 -in "$demo/certs/edge.crt" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64) https://hello.apps.localhost:$port/

Admin CLI:  PORTICO_ADMIN_SOCKET=.demo/admin.sock build/edge/cli/portico connector list

Press Ctrl-C to stop.
MSG
wait "$edge_pid"
