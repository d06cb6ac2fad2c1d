#!/usr/bin/env bash
# Installs what building and testing Portico needs, from Debian's packages only, and only
# what is missing: `apt-get update` runs once, and only when something must be installed.
# Usage: scripts/deps.sh [build|check|demo]   (default: check)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-check}
pkgs=(
  gcc make pkg-config meson ninja-build python3
  libuv1-dev libmbedtls-dev libjansson-dev libsodium-dev node-llhttp liburiparser-dev
)
case "$profile" in
  build) ;;
  check) pkgs+=(clang libclang-rt-14-dev clang-format git openssl nodejs npm chromium) ;;
  demo) pkgs+=(openssl nodejs npm) ;;
  *) echo "deps.sh: unknown profile '$profile' (build, check, demo)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  # A Node.js from elsewhere (NodeSource) bundles npm and conflicts with Debian's package.
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Node.js packages (test identity provider, browser driver) come from the committed lock file.
if [ "$profile" != build ] && [ -f package-lock.json ]; then
  # oidc-provider 9 and playwright-core need Node.js 20.12 or later (Debian 12's own is 18).
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
                process.exit(a > 20 || (a === 20 && b >= 12) ? 0 : 1)'; then
    echo "deps.sh: Node.js $(node --version) is too old: the test identity provider and the" \
      "browser driver need 20.12 or later (e.g. from NodeSource or Debian 13)" >&2
    exit 1
  fi
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    command -v npm >/dev/null || { echo "deps.sh: npm is needed for the Node.js test tools" >&2; exit 1; }
    npm ci --no-audit --no-fund
  fi
fi
