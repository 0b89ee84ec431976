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

-- Ready-made totals per minute for every combination of resource, status, cache status
-- and address. Queries sum() over it: SummingMergeTree folds rows with the same key at
-- merge time, so a key can appear in several rows until then.
-- Its own dedup window: a retried insert into http_log (same insert_deduplication_token,
-- deduplicate_blocks_in_dependent_materialized_views=1) is not counted twice here either.
CREATE TABLE IF NOT EXISTS http_log_totals_1m
(
    minute          DateTime,
    resource_id     UInt64,
    response_status UInt16,
    cache_status    LowCardinality(String),
    remote_addr     String,
    requests        UInt64,
    bytes_sent      UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (minute, resource_id, response_status, cache_status, remote_addr)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS http_log_totals_1m_mv TO http_log_totals_1m AS
SELECT
    toStartOfMinute(timestamp) AS minute,
    resource_id,
    response_status,
    cache_status,
    remote_addr,
    count() AS requests,
    sum(bytes_sent) AS bytes_sent
FROM http_log
GROUP BY minute, resource_id, response_status, cache_status, remote_addr;
