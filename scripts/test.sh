#!/usr/bin/env bash
# `npm test`: installs what a fresh machine lacks, then type-checks and runs every test
# (marble specs, unit tests, and the integration tests on a real local stack).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-node.sh
bash scripts/ensure-tools.sh
export PATH="$PWD/node_modules/.bin:$PATH"
echo "test: $(node --version), $(java -version 2>&1 | head -n 1), $(/usr/sbin/nginx -v 2>&1 || nginx -v 2>&1), $(capnp --version)"
tsc --noEmit -p tsconfig.json
exec vitest run "$@"
