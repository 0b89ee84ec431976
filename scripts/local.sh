#!/usr/bin/env bash
# `npm run local`: the main job on a local stack, from a fresh clone.
#   1. installs what is missing (npm dependencies with Node 24, nginx, capnp, kcat, Kafka jars);
#   2. starts Kafka (KAFKA_PORT, 9092), ClickHouse (CLICKHOUSE_PORT, 8123) and the ch-proxy
#      (PROXY_PORT, 8124, 1 request/minute); the producer and `run` use the same ports
#      (scripts/local-env.sh), unless KAFKA_BROKERS / CLICKHOUSE_URL are set;
#   3. applies the schema;
#   4. starts the synthetic producer at PRODUCER_RATE records/s (default 200) in the background;
#   5. runs `anonymizer run` in the foreground, through the proxy, until Ctrl-C.
# The producer is stopped (by PID) when the run ends; the stack stays up (`npm run stack:down`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-node.sh
bash scripts/ensure-tools.sh
export PATH="$PWD/node_modules/.bin:$PATH"
source scripts/local-env.sh

node stack/cli.ts up
node bin/anonymizer.js migrate --clickhouse-url "$CLICKHOUSE_DIRECT_URL"

rate="${PRODUCER_RATE:-200}"
count="${PRODUCER_COUNT:-720000}"
mkdir -p var
node bin/anonymizer.js produce --rate "$rate" --count "$count" --seed "$(date +%s)" >var/producer.log 2>&1 &
producer=$!
trap 'kill "$producer" 2>/dev/null || true' EXIT
echo "local: producer (pid $producer) writes $count records at $rate/s to $KAFKA_BROKERS; log in var/producer.log"
echo "local: anonymizer run from $KAFKA_BROKERS into $CLICKHOUSE_URL (Ctrl-C to stop); rows appear in ClickHouse once a minute:"
echo "       curl '$CLICKHOUSE_DIRECT_URL/?query=SELECT+count()+FROM+http_log'"
MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 NODE_OPTIONS="--max-old-space-size=192 --max-semi-space-size=16" node bin/anonymizer.js run
