-- The ClickHouse schema, applied by `anonymizer migrate`. Every statement is idempotent
-- (IF NOT EXISTS), so migrate is safe to run again at any time.
-- Statements are separated by a line that ends with `;`.

-- Raw records, as the user specified them. One row per HTTP request.
-- non_replicated_deduplication_window: a retried insert (same insert_deduplication_token)
-- within the last 10 000 inserts is recognised and stored once. At one insert a minute
-- that is about a week of retries.
CREATE TABLE IF NOT EXISTS http_log
(
    timestamp          DateTime,
    resource_id        UInt64,
    bytes_sent         UInt64,
    request_time_milli UInt64,
    response_status    UInt16,
    cache_status       LowCardinality(String),
    method             LowCardinality(String),
    remote_addr        String,
    url                String
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (timestamp, resource_id)
SETTINGS non_replicated_deduplication_window = 10000;
