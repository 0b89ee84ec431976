/**
 * Builds etc/grafana/dashboards/http-log.json, the provisioned Grafana dashboard.
 *
 *   node test/grafana/buildDashboard.ts --write     regenerate the JSON file
 *   node test/grafana/buildDashboard.ts             print it
 *
 * Why a generator: every ClickHouse panel reads one of three rollup tables, chosen by the
 * selected range, through a UNION ALL of branches that differ only in table, bucket
 * column, bucket unit and the part of the range they read (three branches; four for the
 * whole-range panels, whose minute tier also reads whole hours from the hour table).
 * Written by hand that is the same filter four times in each branch of eight panels;
 * generated, the branches cannot drift apart. The JSON stays the
 * source Grafana loads; test/grafana/dashboard.test.ts checks that it equals this output and
 * runs every query it holds.
 *
 * Macro conventions (see test/grafana/grafanaExpand.ts for the expansion):
 * - `$__fromTime`, `$__toTime`, `$__interval_s` are always written inside their own
 *   parentheses, e.g. `($__fromTime)`. Older grafana-plugin-sdk-go releases took the next
 *   parenthesised text anywhere after an argument-less macro as its arguments, and
 *   replaced it too; a `)` right after the macro makes every release expand it alike.
 * - Dashboard variables filter through `$__conditionalAll(<column> IN (${v:singlequote}), $v)`:
 *   the plugin replaces it with `1=1` when "All" is selected, so "All" filters nothing.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_FILE = fileURLToPath(new URL('../../etc/grafana/dashboards/http-log.json', import.meta.url));

/**
 * The ClickHouse plugin release the panels are written for, and the one docker-compose.yml
 * installs (test/compose checks they agree). Not 4.0.0: there `$__fromTime`/`$__toTime`
 * expanded to DateTime64(3); since 4.0.3 they are `toDateTime(<s>)`, which is what the
 * panels' SQL and test/grafana/grafanaExpand.ts rely on.
 */
export const CLICKHOUSE_PLUGIN_VERSION = '4.8.2';

/**
 * The data sources are dashboard variables, so the file imports into any Grafana: Grafana's
 * import asks for one data source per `__inputs` entry and makes it the variable's default;
 * provisioned as it is (docker-compose.yml), the variables resolve to the data sources
 * etc/grafana/provisioning/datasources/datasources.yml provisions with fixed uids and names.
 * Every panel and target names a variable, never a uid.
 */
export const DATA_SOURCES = [
  { variable: 'ds_clickhouse', input: 'DS_CLICKHOUSE', label: 'ClickHouse', type: 'grafana-clickhouse-datasource', provisionedUid: 'clickhouse', provisionedName: 'ClickHouse' },
  { variable: 'ds_prometheus', input: 'DS_PROMETHEUS', label: 'Prometheus', type: 'prometheus', provisionedUid: 'prometheus', provisionedName: 'Prometheus' },
] as const;
export const CLICKHOUSE = { type: 'grafana-clickhouse-datasource', uid: '${ds_clickhouse}' } as const;
export const PROMETHEUS = { type: 'prometheus', uid: '${ds_prometheus}' } as const;

export interface Tier {
  readonly name: '1m' | '1h' | '1d';
  readonly table: string;
  readonly bucket: string;
  /** ClickHouse interval unit of one bucket, and its length in seconds. */
  readonly unit: 'MINUTE' | 'HOUR' | 'DAY';
  readonly seconds: number;
  readonly startOf: string;
}

export const TIERS: readonly Tier[] = [
  { name: '1m', table: 'http_log_totals_1m', bucket: 'minute', unit: 'MINUTE', seconds: 60, startOf: 'toStartOfMinute' },
  { name: '1h', table: 'http_log_totals_1h', bucket: 'hour', unit: 'HOUR', seconds: 3_600, startOf: 'toStartOfHour' },
  { name: '1d', table: 'http_log_totals_1d', bucket: 'day', unit: 'DAY', seconds: 86_400, startOf: 'toStartOfDay' },
];

/**
 * Which table a range reads (docs/schema.md, "How a Grafana panel picks its table"):
 * the minute table for spans up to 24 h that start within its 30-day retention, the hour
 * table for spans up to 31 days that start within its 400-day retention, the day table
 * otherwise. Every quick range of Grafana's picker from 1 h up then gets at least 48 points.
 */
export const THRESHOLDS = {
  minuteMaxSpanSeconds: 24 * 3_600,
  minuteRetentionDays: 30,
  hourMaxSpanSeconds: 31 * 86_400,
  hourRetentionDays: 400,
} as const;

const SPAN = '($__toTime) - ($__fromTime)';
/** A constant once the macros are expanded: ClickHouse folds it and prunes the other branches. */
export const TIER_EXPRESSION =
  `multiIf(${SPAN} <= ${THRESHOLDS.minuteMaxSpanSeconds} AND ($__fromTime) >= now() - INTERVAL ${THRESHOLDS.minuteRetentionDays} DAY, '1m', ` +
  `${SPAN} <= ${THRESHOLDS.hourMaxSpanSeconds} AND ($__fromTime) >= now() - INTERVAL ${THRESHOLDS.hourRetentionDays} DAY, '1h', '1d')`;

/** Dashboard variables: name, label, the column each filters. */
export const VARIABLES = [
  { name: 'resource', label: 'Resource', column: 'resource_id' },
  { name: 'status', label: 'Status', column: 'response_status' },
  { name: 'cache_status', label: 'Cache status', column: 'cache_status' },
  { name: 'address', label: 'Address (/24, /48)', column: 'remote_addr' },
] as const;

const FILTERS = VARIABLES.map((v) => `$__conditionalAll(${v.column} IN (\${${v.name}:singlequote}), $${v.name})`);

/**
 * The whole hours inside a range as the minute table sees it (minute buckets from
 * toStartOfMinute($__fromTime) to $__toTime): [WHOLE_HOURS_FROM, WHOLE_HOURS_TO). Empty,
 * or reversed, when the range holds no whole hour.
 */
export const WHOLE_HOURS_FROM = 'toStartOfHour(toStartOfMinute(($__fromTime)) + INTERVAL 59 MINUTE)';
export const WHOLE_HOURS_TO = 'toStartOfHour(toStartOfMinute(($__toTime)) + INTERVAL 1 MINUTE)';

/** Which rows of a table one branch reads: the range rounded out to whole buckets, or a part of it. */
type BranchRange = 'rounded out' | 'minutes outside whole hours' | 'whole hours';

/** The WHERE clause of one branch: its tier is the chosen one, its part of the range, every variable. */
function where(tier: Tier, table: Tier, range: BranchRange = 'rounded out'): string {
  const rows = {
    'rounded out': `${table.bucket} BETWEEN ${table.startOf}(($__fromTime)) AND ($__toTime)`,
    // A row of the minute table inside a whole hour is read from the hour table instead.
    'minutes outside whole hours': `${table.bucket} BETWEEN ${table.startOf}(($__fromTime)) AND ($__toTime)
      AND (${table.bucket} < ${WHOLE_HOURS_FROM} OR ${table.bucket} >= ${WHOLE_HOURS_TO})`,
    'whole hours': `${table.bucket} >= ${WHOLE_HOURS_FROM} AND ${table.bucket} < ${WHOLE_HOURS_TO}`,
  }[range];
  return [`${TIER_EXPRESSION} = '${tier.name}'`, rows, ...FILTERS].join('\n      AND ');
}

/** Points no finer than Grafana's interval for the panel, and never finer than the table's bucket. */
function timeBucket(tier: Tier): string {
  return `toStartOfInterval(${tier.bucket}, INTERVAL greatest(intDiv(($__interval_s), ${tier.seconds}), 1) ${tier.unit})`;
}

/**
 * One branch per tier around one per-branch SELECT. `select(tier)` returns the select list
 * and the rest after WHERE (GROUP BY …). Aggregation stays inside each branch, on the
 * table itself, so ClickHouse can answer it from the table's aggregate projections.
 */
function branches(select: (tier: Tier) => { columns: string; tail: string }): string {
  return TIERS.map((tier) => branch(select(tier), tier, tier)).join('\n    UNION ALL\n');
}

function branch({ columns, tail }: { columns: string; tail: string }, tier: Tier, table: Tier, range?: BranchRange): string {
  return `    SELECT ${columns}\n    FROM ${table.table}\n    WHERE ${where(tier, table, range)}${tail ? `\n    ${tail}` : ''}`;
}

/**
 * For panels that reduce the whole range to one row per key (totals, tables, top-N):
 * the same three tiers, but the minute tier reads its whole hours from the hour table and
 * only the minutes around them from the minute table. Same answer, exact to the minute,
 * and a 24 h panel reads 24 hour buckets per key instead of 1,440 minute buckets.
 * Time series keep the minute table: their points can be finer than an hour.
 */
function wholeRangeBranches(select: { columns: string; tail: string }): string {
  const [minute, hour, day] = TIERS as [Tier, Tier, Tier];
  return [
    branch(select, minute, minute, 'minutes outside whole hours'),
    branch(select, minute, hour, 'whole hours'),
    branch(select, hour, hour),
    branch(select, day, day),
  ].join('\n    UNION ALL\n');
}

/** The panels whose SQL uses wholeRangeBranches. */
export const WHOLE_RANGE_QUERIES = ['totals', 'statusCache', 'topResources', 'topAddresses'] as const;

const HIT = `cache_status = 'HIT'`;

/** The ClickHouse panels' SQL, by a stable key the test uses to pick its raw-table reference. */
export const QUERIES = {
  traffic: `SELECT time, requests, bytes FROM
(
${branches((t) => ({ columns: `${timeBucket(t)} AS time, sum(requests) AS requests, sum(bytes_sent) AS bytes`, tail: 'GROUP BY time' }))}
)
ORDER BY time`,

  // The cache hit share is summed outside the branches: inside, sumIf() would keep
  // ClickHouse from answering from a projection; grouping by `hit` does not.
  totals: `SELECT sum(n) AS requests, sum(b) AS bytes, sumIf(n, hit) / sum(n) AS hit_ratio FROM
(
${wholeRangeBranches({ columns: `${HIT} AS hit, sum(requests) AS n, sum(bytes_sent) AS b`, tail: 'GROUP BY hit' })}
)`,

  byStatus: `SELECT time, status, requests FROM
(
${branches((t) => ({ columns: `${timeBucket(t)} AS time, toString(response_status) AS status, sum(requests) AS requests`, tail: 'GROUP BY time, status' }))}
)
ORDER BY time, status`,

  byCacheStatus: `SELECT time, cache, requests FROM
(
${branches((t) => ({ columns: `${timeBucket(t)} AS time, if(cache_status = '', '(none)', toString(cache_status)) AS cache, sum(requests) AS requests`, tail: 'GROUP BY time, cache' }))}
)
ORDER BY time, cache`,

  hitRatio: `SELECT time, sumIf(n, hit) / sum(n) AS requests_hit_ratio, sumIf(b, hit) / sum(b) AS bytes_hit_ratio FROM
(
${branches((t) => ({ columns: `${timeBucket(t)} AS time, ${HIT} AS hit, sum(requests) AS n, sum(bytes_sent) AS b`, tail: 'GROUP BY time, hit' }))}
)
GROUP BY time
ORDER BY time`,

  // Summed outside the branches: for a range under 24 h two of them (minutes, whole hours) hold parts of it.
  statusCache: `SELECT status, cache, sum(r) AS requests, sum(b) AS bytes FROM
(
${wholeRangeBranches({ columns: `response_status AS status, if(cache_status = '', '(none)', toString(cache_status)) AS cache, sum(requests) AS r, sum(bytes_sent) AS b`, tail: 'GROUP BY status, cache' })}
)
GROUP BY status, cache
ORDER BY status, cache`,

  // resource_id is a UInt64: as text, so that ids above 2^53 survive JavaScript numbers.
  topResources: `SELECT resource, sum(n) AS requests, sum(b) AS bytes, sumIf(n, hit) / sum(n) AS hit_ratio FROM
(
${wholeRangeBranches({ columns: `toString(resource_id) AS resource, ${HIT} AS hit, sum(requests) AS n, sum(bytes_sent) AS b`, tail: 'GROUP BY resource_id, hit' })}
)
GROUP BY resource
ORDER BY bytes DESC, resource
LIMIT 20`,

  // No hit ratio here: only the by_addr projection (bucket, address) makes this cheap, and it has no cache status.
  // Summed outside the branches: for a range under 24 h two of them (minutes, whole hours) hold parts of it.
  topAddresses: `SELECT network, sum(r) AS requests, sum(b) AS bytes FROM
(
${wholeRangeBranches({ columns: 'remote_addr AS network, sum(requests) AS r, sum(bytes_sent) AS b', tail: 'GROUP BY remote_addr' })}
)
GROUP BY network
ORDER BY bytes DESC, network
LIMIT 20`,
} as const;

export type QueryKey = keyof typeof QUERIES;

/**
 * The variables' option lists, from the day table over the selected range rounded out to
 * whole days: the cheapest table, and it already holds today's rows (the views fill every
 * rollup at insert). Resources and addresses: the 100 largest by bytes, so a dropdown stays
 * usable when there are millions of them (any other value can still be typed in).
 */
export const VARIABLE_QUERIES: Record<(typeof VARIABLES)[number]['name'], string> = {
  resource: `SELECT toString(resource_id) FROM http_log_totals_1d WHERE day BETWEEN toStartOfDay(($__fromTime)) AND ($__toTime) GROUP BY resource_id ORDER BY sum(bytes_sent) DESC, resource_id LIMIT 100`,
  status: `SELECT toString(response_status) FROM http_log_totals_1d WHERE day BETWEEN toStartOfDay(($__fromTime)) AND ($__toTime) GROUP BY response_status ORDER BY response_status`,
  cache_status: `SELECT toString(cache_status) FROM http_log_totals_1d WHERE day BETWEEN toStartOfDay(($__fromTime)) AND ($__toTime) AND cache_status != '' GROUP BY cache_status ORDER BY cache_status`,
  address: `SELECT remote_addr FROM http_log_totals_1d WHERE day BETWEEN toStartOfDay(($__fromTime)) AND ($__toTime) GROUP BY remote_addr ORDER BY sum(bytes_sent) DESC, remote_addr LIMIT 100`,
};

// ---------------------------------------------------------------------------------------
// Panels

type Json = Record<string, unknown>;
interface Grid { x: number; y: number; w: number; h: number }

let nextId = 1;

function clickhousePanel(key: QueryKey, p: { title: string; description: string; type: string; gridPos: Grid; table?: boolean; fieldConfig?: Json; options?: Json }): Json {
  return {
    id: nextId++,
    type: p.type,
    title: p.title,
    description: p.description,
    datasource: CLICKHOUSE,
    gridPos: p.gridPos,
    // Grafana's $__interval, and so $__interval_s, never below a minute: the finest table's bucket.
    interval: '1m',
    fieldConfig: p.fieldConfig ?? { defaults: {}, overrides: [] },
    options: p.options ?? {},
    targets: [{
      refId: 'A',
      datasource: CLICKHOUSE,
      // The plugin's v4 query model (editorType + queryType); without a version the plugin
      // would first run it through its v3 migration.
      pluginVersion: CLICKHOUSE_PLUGIN_VERSION,
      editorType: 'sql',
      // The plugin's Format enum: 0 time series (long frames are widened per label), 1 table.
      format: p.table ? 1 : 0,
      queryType: p.table ? 'table' : 'timeseries',
      rawSql: QUERIES[key],
    }],
  };
}

function prometheusPanel(p: { title: string; description: string; type?: string; gridPos: Grid; unit?: string; targets: Array<{ expr: string; legendFormat: string }>; fieldConfig?: Json; options?: Json }): Json {
  return {
    id: nextId++,
    type: p.type ?? 'timeseries',
    title: p.title,
    description: p.description,
    datasource: PROMETHEUS,
    gridPos: p.gridPos,
    // The least $__interval: the stored-side metrics move once per insert (one per ~62.5 s at
    // 1r/m), so a $__rate_interval that holds fewer than two inserts would draw gaps.
    interval: '2m',
    fieldConfig: p.fieldConfig ?? { defaults: { unit: p.unit ?? 'short' }, overrides: [] },
    options: p.options ?? {},
    targets: p.targets.map((t, i) => ({ refId: String.fromCharCode(65 + i), datasource: PROMETHEUS, expr: t.expr, legendFormat: t.legendFormat, range: true })),
  };
}

function row(title: string, y: number): Json {
  return { id: nextId++, type: 'row', title, collapsed: false, gridPos: { x: 0, y, w: 24, h: 1 }, panels: [] };
}

const legendTable = { legend: { displayMode: 'table', placement: 'right', calcs: ['sum'] }, tooltip: { mode: 'multi', sort: 'desc' } };
const stacked = { defaults: { unit: 'short', custom: { stacking: { mode: 'normal', group: 'A' }, fillOpacity: 40, drawStyle: 'bars', lineWidth: 1 } }, overrides: [] };
/** A field override: the bytes column is in bytes, on the right axis. */
const bytesOnRight = (field: string): Json => ({
  matcher: { id: 'byName', options: field },
  properties: [{ id: 'unit', value: 'bytes' }, { id: 'custom.axisPlacement', value: 'right' }],
});
const bytesUnit = (field: string): Json => ({ matcher: { id: 'byName', options: field }, properties: [{ id: 'unit', value: 'bytes' }] });
const ratioUnit = (field: string): Json => ({ matcher: { id: 'byName', options: field }, properties: [{ id: 'unit', value: 'percentunit' }, { id: 'decimals', value: 1 }] });

function trafficPanels(): Json[] {
  return [
    row('Traffic (ClickHouse rollups: 1 min up to 24 h, 1 h up to 31 d, 1 d beyond)', 0),
    clickhousePanel('totals', {
      title: 'Totals in range', type: 'stat', gridPos: { x: 0, y: 1, w: 6, h: 8 }, table: true,
      description: 'Requests, bytes sent and the share of requests served from cache (HIT) over the selected range and filters. Coarse tables round the range out to whole hours or days.',
      fieldConfig: { defaults: { unit: 'short' }, overrides: [bytesUnit('bytes'), ratioUnit('hit_ratio')] },
      options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, orientation: 'vertical', textMode: 'value_and_name', colorMode: 'none', graphMode: 'none' },
    }),
    clickhousePanel('traffic', {
      title: 'Traffic: requests and bytes', type: 'timeseries', gridPos: { x: 6, y: 1, w: 18, h: 8 },
      description: 'Requests (left axis) and bytes sent (right axis) per interval.',
      fieldConfig: { defaults: { unit: 'short', custom: { fillOpacity: 10 } }, overrides: [bytesOnRight('bytes')] },
      options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
    }),
    clickhousePanel('byStatus', {
      title: 'Requests by HTTP status', type: 'timeseries', gridPos: { x: 0, y: 9, w: 12, h: 8 },
      description: 'Requests per interval, stacked by response status.',
      fieldConfig: { ...stacked, defaults: { ...stacked.defaults, displayName: '${__field.labels.status}' } },
      options: legendTable,
    }),
    clickhousePanel('byCacheStatus', {
      title: 'Requests by cache status', type: 'timeseries', gridPos: { x: 12, y: 9, w: 12, h: 8 },
      description: 'Requests per interval, stacked by cache status; (none) is an empty cache status.',
      fieldConfig: { ...stacked, defaults: { ...stacked.defaults, displayName: '${__field.labels.cache}' } },
      options: legendTable,
    }),
    clickhousePanel('hitRatio', {
      title: 'Cache hit ratio', type: 'timeseries', gridPos: { x: 0, y: 17, w: 12, h: 8 },
      description: 'Share of requests, and of bytes, with cache status HIT, per interval.',
      fieldConfig: { defaults: { unit: 'percentunit', min: 0, max: 1, decimals: 1 }, overrides: [] },
      options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
    }),
    clickhousePanel('statusCache', {
      title: 'Status × cache status', type: 'table', gridPos: { x: 12, y: 17, w: 12, h: 8 }, table: true,
      description: 'Requests and bytes over the range, per response status and cache status.',
      fieldConfig: { defaults: {}, overrides: [bytesUnit('bytes')] },
    }),
    clickhousePanel('topResources', {
      title: 'Top resources by bytes', type: 'table', gridPos: { x: 0, y: 25, w: 12, h: 10 }, table: true,
      description: 'The 20 resources that sent the most bytes in the range, with their requests and cache hit ratio.',
      fieldConfig: { defaults: {}, overrides: [bytesUnit('bytes'), ratioUnit('hit_ratio')] },
    }),
    clickhousePanel('topAddresses', {
      title: 'Top client networks (/24, /48) by bytes', type: 'table', gridPos: { x: 12, y: 25, w: 12, h: 10 }, table: true,
      description: 'Client addresses are stored anonymized (a.b.c.X, or the first three IPv6 hextets), so each row is a /24 or /48 network.',
      fieldConfig: { defaults: {}, overrides: [bytesUnit('bytes')] },
    }),
  ];
}

/** The anonymizer's own metrics (src/streams/pipelineMetrics.ts, src/cli/run.ts), scraped by Prometheus. */
function pipelinePanels(): Json[] {
  const y = 35;
  return [
    row('Pipeline (Prometheus: the anonymizer\'s /metrics)', y),
    prometheusPanel({
      title: 'Keeping up: records in, rows stored', gridPos: { x: 0, y: y + 1, w: 6, h: 8 }, unit: 'short',
      description: 'Records consumed from Kafka and rows acknowledged by ClickHouse, per second (averaged over $__rate_interval). Stored below consumed for long means the proxy is the bottleneck: watch the spool.',
      targets: [
        { expr: 'sum(rate(anonymizer_records_consumed_total[$__rate_interval]))', legendFormat: 'consumed/s' },
        { expr: 'sum(rate(anonymizer_rows_stored_total[$__rate_interval]))', legendFormat: 'stored/s' },
      ],
    }),
    prometheusPanel({
      title: 'Consumer lag', gridPos: { x: 6, y: y + 1, w: 6, h: 8 }, unit: 'short',
      description: 'Per topic and partition (variable topic): the high-water mark minus the next offset to fetch, in messages. Kafka may delete unread records after its retention, so lag must stay near zero.',
      targets: [{ expr: 'sum by (topic, partition) (anonymizer_consumer_lag_messages{topic=~"$topic"})', legendFormat: '{{topic}} partition {{partition}}' }],
    }),
    prometheusPanel({
      title: 'Spool depth', gridPos: { x: 12, y: y + 1, w: 6, h: 8 }, unit: 'bytes',
      description: 'Sealed batches waiting for a proxy slot, in bytes (left) and batches (right); paused = 1 while consumption is paused because the spool is over SPOOL_MAX_BYTES.',
      fieldConfig: {
        defaults: { unit: 'bytes' },
        overrides: [
          { matcher: { id: 'byName', options: 'batches' }, properties: [{ id: 'unit', value: 'short' }, { id: 'custom.axisPlacement', value: 'right' }] },
          { matcher: { id: 'byName', options: 'paused' }, properties: [{ id: 'unit', value: 'short' }, { id: 'custom.axisPlacement', value: 'right' }, { id: 'custom.drawStyle', value: 'bars' }] },
        ],
      },
      targets: [
        { expr: 'sum(anonymizer_spool_bytes)', legendFormat: 'bytes' },
        { expr: 'sum(anonymizer_spool_batches)', legendFormat: 'batches' },
        { expr: 'max(anonymizer_consumer_paused)', legendFormat: 'paused' },
      ],
    }),
    prometheusPanel({
      title: 'End-to-end latency', gridPos: { x: 18, y: y + 1, w: 6, h: 8 }, unit: 's',
      description: "From the oldest record's Kafka timestamp in a batch to ClickHouse's acknowledgement (over $__rate_interval). Under capacity about one proxy interval; growing means a backlog in the spool.",
      targets: [
        { expr: 'histogram_quantile(0.5, sum by (le) (rate(anonymizer_end_to_end_latency_seconds_bucket[$__rate_interval])))', legendFormat: 'p50' },
        { expr: 'histogram_quantile(0.95, sum by (le) (rate(anonymizer_end_to_end_latency_seconds_bucket[$__rate_interval])))', legendFormat: 'p95' },
      ],
    }),
    prometheusPanel({
      title: 'Rows per request, body fill', gridPos: { x: 0, y: y + 9, w: 8, h: 8 }, unit: 'short',
      description: 'Average rows per stored insert (left) and compressed body ÷ PROXY_MAX_BODY_BYTES (right), over $__rate_interval. Throughput is rows per request divided by the proxy interval; a fill near 100 % means full requests.',
      fieldConfig: { defaults: { unit: 'short' }, overrides: [{ matcher: { id: 'byName', options: 'body fill' }, properties: [{ id: 'unit', value: 'percentunit' }, { id: 'min', value: 0 }, { id: 'custom.axisPlacement', value: 'right' }] }] },
      targets: [
        { expr: 'sum(increase(anonymizer_request_rows_sum[$__rate_interval])) / sum(increase(anonymizer_request_rows_count[$__rate_interval]))', legendFormat: 'rows' },
        { expr: 'sum(increase(anonymizer_request_fill_ratio_sum[$__rate_interval])) / sum(increase(anonymizer_request_fill_ratio_count[$__rate_interval]))', legendFormat: 'body fill' },
      ],
    }),
    prometheusPanel({
      title: 'Seconds to the next proxy slot', gridPos: { x: 8, y: y + 9, w: 8, h: 8 }, unit: 's',
      description: 'When the proxy may take the next insert (one request per PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS).',
      targets: [{ expr: 'max(anonymizer_next_slot_seconds)', legendFormat: 'next slot' }],
    }),
    prometheusPanel({
      title: 'Errors (per interval)', gridPos: { x: 16, y: y + 9, w: 8, h: 8 }, unit: 'short',
      description: 'Messages sent to the dead-letter topic by reason, insert requests that did not store (by outcome), batches split (413) or quarantined (refused data), addresses that did not parse.',
      fieldConfig: { defaults: { unit: 'short', custom: { drawStyle: 'bars', fillOpacity: 60, stacking: { mode: 'normal', group: 'A' } } }, overrides: [] },
      targets: [
        { expr: 'sum by (reason) (increase(anonymizer_messages_dead_lettered_total[$__rate_interval]))', legendFormat: 'dead-lettered: {{reason}}' },
        { expr: 'sum by (outcome) (increase(anonymizer_insert_requests_total{outcome!="stored"}[$__rate_interval]))', legendFormat: 'insert: {{outcome}}' },
        { expr: 'sum(increase(anonymizer_batches_split_total[$__rate_interval]))', legendFormat: 'batches split' },
        { expr: 'sum(increase(anonymizer_batches_quarantined_total[$__rate_interval]))', legendFormat: 'batches quarantined' },
        { expr: 'sum(increase(anonymizer_invalid_addresses_total[$__rate_interval]))', legendFormat: 'invalid addresses' },
      ],
    }),
  ];
}

function variable(v: (typeof VARIABLES)[number]): Json {
  return {
    type: 'query',
    name: v.name,
    label: v.label,
    datasource: CLICKHOUSE,
    query: { rawSql: VARIABLE_QUERIES[v.name], pluginVersion: CLICKHOUSE_PLUGIN_VERSION, editorType: 'sql', format: 1, refId: 'VariableQuery' },
    definition: VARIABLE_QUERIES[v.name],
    // 2: refresh the options when the time range changes.
    refresh: 2,
    multi: true,
    includeAll: true,
    // No custom all value: "All" keeps the value $__all, which $__conditionalAll turns into 1=1.
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    sort: 0,
    hide: 0,
  };
}

/**
 * A data source variable. Its default holds the import input (`${DS_CLICKHOUSE}`), which
 * Grafana's import replaces with the uid the user picks; provisioning replaces nothing, and
 * Grafana then matches the default by its text, the provisioned data source's name (a
 * variable's current value is looked up by value, then by text).
 */
function dataSourceVariable(ds: (typeof DATA_SOURCES)[number]): Json {
  return {
    type: 'datasource',
    name: ds.variable,
    label: ds.label,
    query: ds.type,
    regex: '',
    current: { selected: true, text: ds.provisionedName, value: `\${${ds.input}}` },
    options: [],
    refresh: 1,
    hide: 0,
  };
}

/** The Prometheus panels' topic filter: the topics the anonymizer reports lag for. */
export const TOPIC_VARIABLE = 'topic';
function topicVariable(): Json {
  const query = 'label_values(anonymizer_consumer_lag_messages, topic)';
  return {
    type: 'query',
    name: TOPIC_VARIABLE,
    label: 'Topic',
    datasource: PROMETHEUS,
    query: { query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
    definition: query,
    refresh: 2,
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    sort: 1,
    hide: 0,
  };
}

export function buildDashboard(): Json {
  nextId = 1;
  return {
    // What Grafana's import asks for: one data source per input, substituted for
    // `${DS_…}` in the data source variables' defaults. Provisioning ignores them.
    __inputs: DATA_SOURCES.map((ds) => ({
      name: ds.input,
      label: ds.label,
      description: `The ${ds.label} data source the ${ds.label === 'ClickHouse' ? 'traffic' : 'pipeline'} panels read (dashboard variable ${ds.variable})`,
      type: 'datasource',
      pluginId: ds.type,
      pluginName: ds.label,
    })),
    __requires: [
      { type: 'grafana', id: 'grafana', name: 'Grafana', version: '12.2.0' },
      { type: 'datasource', id: 'grafana-clickhouse-datasource', name: 'ClickHouse', version: CLICKHOUSE_PLUGIN_VERSION },
      { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
    ],
    uid: 'http-log',
    title: 'HTTP log traffic',
    description: 'Served traffic from the ClickHouse totals tables (http_log_totals_1m/1h/1d, chosen by the range), and the anonymizer pipeline from Prometheus. Generated by test/grafana/buildDashboard.ts; checked by test/grafana/dashboard.test.ts.',
    tags: ['http-log', 'clickhouse'],
    timezone: 'utc',
    // Grafana 12.2+ (the compose file runs 12.4).
    schemaVersion: 42,
    version: 1,
    editable: true,
    graphTooltip: 1,
    liveNow: false,
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    refresh: '1m',
    fiscalYearStartMonth: 0,
    links: [],
    annotations: { list: [] },
    templating: { list: [...DATA_SOURCES.map(dataSourceVariable), ...VARIABLES.map(variable), topicVariable()] },
    panels: [...trafficPanels(), ...pipelinePanels()],
  };
}

export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--write')) {
    writeFileSync(DASHBOARD_FILE, dashboardJson());
    process.stderr.write(`wrote ${DASHBOARD_FILE}\n`);
  } else {
    process.stdout.write(dashboardJson());
  }
}
