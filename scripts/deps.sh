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
  check) pkgs+=(clang libclang-rt-14-dev clang-format git openssl nodejs) ;;
  demo) pkgs+=(openssl nodejs) ;;
  *) echo "deps.sh: unknown profile '$profile' (build, check, demo)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
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
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    command -v npm >/dev/null || { echo "deps.sh: npm is needed for the Node.js test tools" >&2; exit 1; }
    npm ci --no-audit --no-fund
  fi
fi
