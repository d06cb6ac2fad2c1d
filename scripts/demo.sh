#!/usr/bin/env bash
# `make demo`: installs what is missing, builds, and runs what Portico can run today on
# loopback. It says plainly what exists and what does not.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh demo
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build
cat <<'MSG'

Portico built. What runs today:
  - the tunnel protocol core (proto/) and the shared runtime (common/), with their tests:
      make check
  - the protocol codec benchmark:
      make bench

Not built yet: the portico-edge and portico-connector daemons and the portico CLI, so there is
no edge, connector, sample backend or identity provider to start and no URL to open. This
command will start them on loopback and print the URLs once the daemons exist.
MSG
