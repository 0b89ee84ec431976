#!/usr/bin/env bash
# `npm test`: installs what a fresh machine lacks, type-checks, then runs the unit lane
# (marble specs and unit tests: no network, no server, about a minute) and, if it passes,
# the integration lane (real Kafka, ClickHouse engine and nginx). Arguments go to both
# vitest runs (e.g. a file filter); a lane with no matching file is skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-node.sh
bash scripts/ensure-tools.sh
export PATH="$PWD/node_modules/.bin:$PATH"
echo "test: $(node --version), $(java -version 2>&1 | head -n 1), $(/usr/sbin/nginx -v 2>&1 || nginx -v 2>&1), $(capnp --version)"
tsc --noEmit -p tsconfig.json
vitest run --project unit --passWithNoTests "$@"
exec vitest run --project integration --passWithNoTests "$@"
