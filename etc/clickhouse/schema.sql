-- The ClickHouse schema, applied by `anonymizer migrate`. Every statement is idempotent
-- (IF NOT EXISTS), so migrate is safe to run again at any time. Each statement costs one
-- request (one proxy slot, a minute each through the 1 request/minute proxy): there are 7.
-- Statements are separated by a line that ends with `;`. The choices are explained in
-- docs/schema.md.
--
-- Retention (TTL) is configured after creation, not here: `ALTER TABLE <t> MODIFY TTL …`
-- (see docs/schema.md). CREATE … IF NOT EXISTS never touches an existing table, so a
-- later migrate keeps the TTL an operator set.
--
-- Dedup: every table that receives inserts (the raw table and every view's target) sets
-- non_replicated_deduplication_window. With the pipeline's pinned settings
-- (insert_deduplication_token, insert_deduplicate=1,
-- deduplicate_blocks_in_dependent_materialized_views=1) a retried insert is stored once in
-- every table. 10 000 inserts is about a week at one insert a minute.

-- Raw records, as the user specified them. One row per HTTP request.
CREATE TABLE IF NOT EXISTS http_log
(
    timestamp          DateTime               CODEC(DoubleDelta, ZSTD(1)),
    resource_id        UInt64                 CODEC(T64, ZSTD(1)),
    bytes_sent         UInt64                 CODEC(T64, ZSTD(1)),
    request_time_milli UInt64                 CODEC(T64, ZSTD(1)),
    response_status    UInt16                 CODEC(T64, ZSTD(1)),
    cache_status       LowCardinality(String) CODEC(ZSTD(1)),
    method             LowCardinality(String) CODEC(ZSTD(1)),
    remote_addr        String                 CODEC(ZSTD(3)),
    url                String                 CODEC(ZSTD(9))
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (timestamp, url)
TTL timestamp + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000, ttl_only_drop_parts = 1;

-- Ready-made totals per minute for every combination of resource, status, cache status
-- and (anonymized) address. SummingMergeTree folds rows with the same key at merge time,
-- so a key can appear in several rows until then: queries always sum().
-- The projections are smaller pre-aggregated or re-sorted forms; ClickHouse answers a
-- query from the one that reads the fewest marks, automatically. `rebuild` keeps them
-- exact when merges fold rows. The table's own sort key starts with the address and the
-- resource: every query without an address filter is answered by a projection, and one
-- with it finds its rows as one contiguous range (docs/schema.md).
CREATE TABLE IF NOT EXISTS http_log_totals_1m
(
    minute          DateTime               CODEC(T64, ZSTD(1)),
    resource_id     UInt64                 CODEC(ZSTD(1)),
    response_status UInt16                 CODEC(ZSTD(1)),
    cache_status    LowCardinality(String) CODEC(ZSTD(1)),
    remote_addr     String                 CODEC(ZSTD(1)),
    requests        UInt64                 CODEC(T64, ZSTD(1)),
    bytes_sent      UInt64                 CODEC(T64, ZSTD(1)),
    PROJECTION by_time (SELECT minute, sum(requests), sum(bytes_sent) GROUP BY minute),
    PROJECTION by_status (SELECT minute, response_status, cache_status, sum(requests), sum(bytes_sent)
                          GROUP BY minute, response_status, cache_status),
    PROJECTION by_dims (SELECT minute, resource_id, response_status, cache_status, sum(requests), sum(bytes_sent)
                        GROUP BY minute, resource_id, response_status, cache_status),
    PROJECTION by_resource (SELECT resource_id, minute, response_status, cache_status, sum(requests), sum(bytes_sent)
                            GROUP BY resource_id, minute, response_status, cache_status),
    PROJECTION by_addr (SELECT minute, remote_addr, sum(requests), sum(bytes_sent) GROUP BY minute, remote_addr)
)
ENGINE = SummingMergeTree((requests, bytes_sent))
PARTITION BY toYYYYMMDD(minute)
ORDER BY (remote_addr, resource_id, minute, response_status, cache_status)
TTL minute + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000, ttl_only_drop_parts = 1,
         deduplicate_merge_projection_mode = 'rebuild';

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

-- Hourly totals, the same shape, for ranges up to about a week. Filled from the raw table
-- (not from the minute table): each view sees exactly the deduplicated insert block.
CREATE TABLE IF NOT EXISTS http_log_totals_1h
(
    hour            DateTime               CODEC(T64, ZSTD(1)),
    resource_id     UInt64                 CODEC(ZSTD(1)),
    response_status UInt16                 CODEC(ZSTD(1)),
    cache_status    LowCardinality(String) CODEC(ZSTD(1)),
    remote_addr     String                 CODEC(ZSTD(1)),
    requests        UInt64                 CODEC(T64, ZSTD(1)),
    bytes_sent      UInt64                 CODEC(T64, ZSTD(1)),
    PROJECTION by_time (SELECT hour, sum(requests), sum(bytes_sent) GROUP BY hour),
    PROJECTION by_status (SELECT hour, response_status, cache_status, sum(requests), sum(bytes_sent)
                          GROUP BY hour, response_status, cache_status),
    PROJECTION by_dims (SELECT hour, resource_id, response_status, cache_status, sum(requests), sum(bytes_sent)
                        GROUP BY hour, resource_id, response_status, cache_status),
    PROJECTION by_resource (SELECT resource_id, hour, response_status, cache_status, sum(requests), sum(bytes_sent)
                            GROUP BY resource_id, hour, response_status, cache_status),
    PROJECTION by_addr (SELECT hour, remote_addr, sum(requests), sum(bytes_sent) GROUP BY hour, remote_addr)
)
ENGINE = SummingMergeTree((requests, bytes_sent))
PARTITION BY toYYYYMM(hour)
ORDER BY (remote_addr, resource_id, hour, response_status, cache_status)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000, ttl_only_drop_parts = 1,
         deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS http_log_totals_1h_mv TO http_log_totals_1h AS
SELECT
    toStartOfHour(timestamp) AS hour,
    resource_id,
    response_status,
    cache_status,
    remote_addr,
    count() AS requests,
    sum(bytes_sent) AS bytes_sent
FROM http_log
GROUP BY hour, resource_id, response_status, cache_status, remote_addr;

-- Daily totals, the same shape, for long ranges. Days are the server's time zone's days.
CREATE TABLE IF NOT EXISTS http_log_totals_1d
(
    day             DateTime               CODEC(T64, ZSTD(1)),
    resource_id     UInt64                 CODEC(ZSTD(1)),
    response_status UInt16                 CODEC(ZSTD(1)),
    cache_status    LowCardinality(String) CODEC(ZSTD(1)),
    remote_addr     String                 CODEC(ZSTD(1)),
    requests        UInt64                 CODEC(T64, ZSTD(1)),
    bytes_sent      UInt64                 CODEC(T64, ZSTD(1)),
    PROJECTION by_time (SELECT day, sum(requests), sum(bytes_sent) GROUP BY day),
    PROJECTION by_status (SELECT day, response_status, cache_status, sum(requests), sum(bytes_sent)
                          GROUP BY day, response_status, cache_status),
    PROJECTION by_dims (SELECT day, resource_id, response_status, cache_status, sum(requests), sum(bytes_sent)
                        GROUP BY day, resource_id, response_status, cache_status),
    PROJECTION by_resource (SELECT resource_id, day, response_status, cache_status, sum(requests), sum(bytes_sent)
                            GROUP BY resource_id, day, response_status, cache_status),
    PROJECTION by_addr (SELECT day, remote_addr, sum(requests), sum(bytes_sent) GROUP BY day, remote_addr)
)
ENGINE = SummingMergeTree((requests, bytes_sent))
PARTITION BY toYear(day)
ORDER BY (remote_addr, resource_id, day, response_status, cache_status)
TTL day + INTERVAL 1830 DAY
SETTINGS non_replicated_deduplication_window = 10000, ttl_only_drop_parts = 1,
         deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS http_log_totals_1d_mv TO http_log_totals_1d AS
SELECT
    toStartOfDay(timestamp) AS day,
    resource_id,
    response_status,
    cache_status,
    remote_addr,
    count() AS requests,
    sum(bytes_sent) AS bytes_sent
FROM http_log
GROUP BY day, resource_id, response_status, cache_status, remote_addr;
