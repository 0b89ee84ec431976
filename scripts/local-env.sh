# Sourced by scripts/local.sh: one set of port variables for everything `npm run local`
# starts and runs.
#   KAFKA_PORT (9092), CLICKHOUSE_PORT (8123), PROXY_PORT (8124): the local stack's ports
#   (stack/cli.ts reads them); the producer's KAFKA_BROKERS and run's KAFKA_BROKERS and
#   CLICKHOUSE_URL (the proxy) follow them unless they are set themselves.
# Checked by test/cli/localEnv.test.ts.
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export CLICKHOUSE_PORT="${CLICKHOUSE_PORT:-8123}"
export PROXY_PORT="${PROXY_PORT:-8124}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:${KAFKA_PORT}}"
export CLICKHOUSE_URL="${CLICKHOUSE_URL:-http://127.0.0.1:${PROXY_PORT}}"
# migrate goes to ClickHouse itself: through the proxy each statement would wait for a slot.
CLICKHOUSE_DIRECT_URL="http://127.0.0.1:${CLICKHOUSE_PORT}"
