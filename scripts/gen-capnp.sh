#!/usr/bin/env bash
# Regenerates schema/http_log.capnp.{js,d.ts} with Debian's `capnp` and the capnp-ts plugin.
# capnpc-ts 0.7.0 still types UInt64 fields as `capnp.Uint64`, a class the capnp-ts 0.9
# runtime replaced with native bigint (its getters return bigint), so the declarations
# are rewritten to match what the runtime really returns.
set -euo pipefail
cd "$(dirname "$0")/.."
capnp compile -o node_modules/.bin/capnpc-ts schema/http_log.capnp
sed -i 's/capnp\.Uint64/bigint/g' schema/http_log.capnp.d.ts
