// etc/grafana/dashboards/http-log.json, checked against the real engine (chdb behind the
// local HTTP endpoint) with seeded rows loaded through the schema's materialized views:
// - the file is what test/grafana/buildDashboard.ts generates, and is well formed for
//   provisioning (stable uid, current schemaVersion) and for import: its data sources are
//   variables (no panel or target names a uid) that `__inputs` asks for on import and that
//   resolve to the provisioned data sources otherwise;
// - every ClickHouse panel filters on every variable, in every branch;
// - for several ranges and variable settings, every panel's SQL, expanded the way Grafana
//   and the ClickHouse plugin expand it (test/grafana/grafanaExpand.ts), returns rows,
//   returns exactly what the same aggregate over the raw table http_log returns, and
//   reads only the rollup table its range calls for (EXPLAIN ESTIMATE), from one of its
//   aggregate projections when no variable filters;
// - the variables' queries list the values present in the raw table;
// - every Prometheus expression names metrics the anonymizer registers, and takes rate() or
//   increase() of counters only, over $__rate_interval.

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT, startClickHouse } from '../../stack/index.ts';
import type { ServiceHandle } from '../../stack/index.ts';
import { splitStatements } from '../../src/cli/migrate.ts';
import { createPipelineMetrics, registerClientGauges } from '../../src/streams/pipelineMetrics.ts';
import { generateRows, seededRandom, toTsv } from '../schema/data.ts';
import type { Row } from '../schema/data.ts';
import { CLICKHOUSE, DASHBOARD_FILE, DATA_SOURCES, PROMETHEUS, QUERIES, TOPIC_VARIABLE, TIERS, VARIABLE_QUERIES, VARIABLES, WHOLE_HOURS_FROM, WHOLE_HOURS_TO, WHOLE_RANGE_QUERIES, dashboardJson } from './buildDashboard.ts';
import type { QueryKey, Tier } from './buildDashboard.ts';
import { expandQuery } from './grafanaExpand.ts';
import type { VariableState } from './grafanaExpand.ts';

const DB = 'grafana_test';
const HOUR = 3_600;
const DAY = 86_400;

interface Target { refId: string; rawSql?: string; expr?: string; datasource?: { uid: string; type: string } }
interface Panel { id: number; type: string; title: string; datasource?: { uid: string; type: string }; targets?: Target[]; panels?: Panel[] }
interface Dashboard {
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  templating: {
    list: Array<{
      name: string; type: string; includeAll: boolean; multi: boolean; allValue?: string | null;
      query: { rawSql: string; query?: string } | string; datasource: { uid: string }; current: { text: unknown; value: unknown };
    }>;
  };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const clickhousePanels = allPanels(dashboard.panels).filter((p) => p.datasource?.uid === CLICKHOUSE.uid);
const prometheusPanels = allPanels(dashboard.panels).filter((p) => p.datasource?.uid === PROMETHEUS.uid);

/** Which QUERIES entry a panel runs, found by its SQL; a panel with SQL of its own has no reference and fails the test. */
function queryKeyOf(sql: string): QueryKey | undefined {
  return (Object.keys(QUERIES) as QueryKey[]).find((key) => QUERIES[key] === sql);
}

// ---------------------------------------------------------------------------------------
// Seeded data: recent and old rows, the schema tests' dimension values plus a long tail of
// resources and networks so the top-20 panels truncate.

const NOW = Math.floor(Date.now() / 1000);
const OLD = NOW - 35 * DAY; // older than the minute table's 30-day window
// Past ends that hold rows after them, fixed relative to the hour (of UTC; on the server's
// hours too wherever its time zone's offset is a whole number of hours, as here).
const PAST_HOUR = Math.floor((NOW - 3 * HOUR) / HOUR) * HOUR;
const PAST_END = PAST_HOUR + 17 * 60 + 20; // 17 min 20 s past an hour

/** Older rows fall on a few days only: each day is a partition, and parts cost insert time. */
const OLDER_DAYS = [3, 6, 12, 25, 38];

function seedRows(): Row[] {
  const random = seededRandom(20_261_125);
  const rows = generateRows(20_261_125, 30_000, NOW - 40 * DAY, 40);
  return rows.map((row, i) => {
    const r = random();
    const timestamp =
      r < 0.4 ? NOW - Math.floor(random() * 2 * HOUR) // the last two hours
        : r < 0.7 ? NOW - Math.floor(random() * 2 * DAY)
          : r < 0.95 ? NOW - (OLDER_DAYS[Math.floor(random() * OLDER_DAYS.length)] as number) * DAY - Math.floor(random() * 6 * HOUR)
            : OLD + Math.floor(random() * 2 * HOUR); // two hours 35 days ago
    const tail = random() < 0.1;
    return {
      ...row,
      timestamp,
      resource_id: tail ? String(1_000 + Math.floor(random() * 500)) : row.resource_id,
      remote_addr: tail && i % 2 === 0 ? `172.16.${Math.floor(random() * 200)}.X` : row.remote_addr,
    };
  });
}

// ---------------------------------------------------------------------------------------
// Cases

interface RangeCase { name: string; from: number; to: number; intervalS: number; tier: Tier['name']; wholeHours?: boolean }
/** Intervals are what Grafana gives a ~1000 px panel with `interval: 1m`, plus one coarse case. */
const RANGES: RangeCase[] = [
  { name: 'last 1 h', from: NOW - HOUR, to: NOW, intervalS: 60, tier: '1m' },
  { name: 'last 24 h', from: NOW - DAY, to: NOW, intervalS: 120, tier: '1m' },
  { name: 'last 24 h, 2 h points', from: NOW - DAY, to: NOW, intervalS: 7_200, tier: '1m' },
  // Both ends inside an hour, with rows after the end: the whole-range panels' split into
  // whole hours (hour table) and the minutes around them (minute table) must not overreach.
  { name: '6 h ending 3 h ago, mid-hour', from: PAST_END - 6 * HOUR, to: PAST_END, intervalS: 60, tier: '1m', wholeHours: true },
  // Inside one hour: no whole hour, the minute table alone.
  { name: '15 min, mid-hour', from: PAST_END - 15 * 60, to: PAST_END, intervalS: 60, tier: '1m', wholeHours: false },
  // Whole hours only, ending on an hour (the end minute itself is still a minute bucket).
  { name: '2 h, on the hour', from: PAST_HOUR - 2 * HOUR, to: PAST_HOUR, intervalS: 60, tier: '1m', wholeHours: true },
  { name: 'last 7 d', from: NOW - 7 * DAY, to: NOW, intervalS: 600, tier: '1h' },
  { name: 'last 30 d', from: NOW - 30 * DAY, to: NOW, intervalS: 1_800, tier: '1h' },
  { name: 'last 40 d', from: NOW - 40 * DAY, to: NOW, intervalS: 3_600, tier: '1d' },
  { name: '1 h, 35 days ago', from: OLD + 600, to: OLD + 600 + HOUR, intervalS: 60, tier: '1h' },
];

type Selection = Partial<Record<(typeof VARIABLES)[number]['name'], string[]>>;
const SELECTIONS: Array<{ name: string; selected: Selection }> = [
  { name: 'All', selected: {} },
  { name: 'one resource', selected: { resource: ['1'] } },
  { name: 'statuses, cache statuses, a network', selected: { status: ['200', '404'], cache_status: ['HIT', 'MISS'], address: ['1.2.3.X'] } },
  { name: 'all four', selected: { resource: ['1', '42'], status: ['200'], cache_status: ['HIT'], address: ['1.2.3.X', '10.0.0.X'] } },
];

const variableStates = (selected: Selection): VariableState[] =>
  VARIABLES.map((v) => ({ name: v.name, value: selected[v.name] ?? ['$__all'] }));

// ---------------------------------------------------------------------------------------
// The same aggregates, from the raw table

const tierOf = (name: Tier['name']): Tier => TIERS.find((t) => t.name === name) as Tier;
/** Branches of a panel's UNION ALL: one per `FROM` of a totals table. */
const branchCountOf = (sql: string): number => sql.split('\n    FROM http_log_totals_').length - 1;
const isWholeRange = (key: QueryKey | undefined): boolean => (WHOLE_RANGE_QUERIES as readonly string[]).includes(key ?? '');

/**
 * The tables a panel reads for a range. A whole-range panel in the minute tier reads the
 * whole hours inside the range (if any: `hasWholeHours`, asked of the server, whose time
 * zone decides where hours start) from the hour table, the minutes around them from the
 * minute table.
 */
function tablesRead(key: QueryKey, range: RangeCase, hasWholeHours: boolean): string[] {
  const tier = tierOf(range.tier);
  if (!isWholeRange(key) || tier.name !== '1m') return [tier.table];
  return hasWholeHours ? [tier.table, tierOf('1h').table] : [tier.table];
}

function rawReference(key: QueryKey, range: RangeCase, selected: Selection): string {
  const t = tierOf(range.tier);
  const bucket = `${t.startOf}(timestamp)`;
  const time = `toStartOfInterval(${bucket}, INTERVAL greatest(intDiv(${range.intervalS}, ${t.seconds}), 1) ${t.unit})`;
  const literal = (column: string, value: string): string => (column === 'resource_id' || column === 'response_status' ? value : `'${value}'`);
  const filters = VARIABLES.filter((v) => selected[v.name]).map((v) => `${v.column} IN (${(selected[v.name] as string[]).map((x) => literal(v.column, x)).join(', ')})`);
  const where = [`${bucket} BETWEEN ${t.startOf}(toDateTime(${range.from})) AND toDateTime(${range.to})`, ...filters].join(' AND ');
  const hit = `cache_status = 'HIT'`;
  const cache = `if(cache_status = '', '(none)', toString(cache_status))`;
  switch (key) {
    case 'traffic': return `SELECT ${time} AS time, count() AS requests, sum(bytes_sent) AS bytes FROM http_log WHERE ${where} GROUP BY time ORDER BY time`;
    case 'totals': return `SELECT count() AS requests, sum(bytes_sent) AS bytes, countIf(${hit}) / count() AS hit_ratio FROM http_log WHERE ${where}`;
    case 'byStatus': return `SELECT ${time} AS time, toString(response_status) AS status, count() AS requests FROM http_log WHERE ${where} GROUP BY time, status ORDER BY time, status`;
    case 'byCacheStatus': return `SELECT ${time} AS time, ${cache} AS cache, count() AS requests FROM http_log WHERE ${where} GROUP BY time, cache ORDER BY time, cache`;
    case 'hitRatio': return `SELECT ${time} AS time, countIf(${hit}) / count(), sumIf(bytes_sent, ${hit}) / sum(bytes_sent) FROM http_log WHERE ${where} GROUP BY time ORDER BY time`;
    case 'statusCache': return `SELECT response_status AS status, ${cache} AS cache, count(), sum(bytes_sent) FROM http_log WHERE ${where} GROUP BY status, cache ORDER BY status, cache`;
    case 'topResources': return `SELECT toString(resource_id) AS resource, count() AS requests, sum(bytes_sent) AS bytes, countIf(${hit}) / count() FROM http_log WHERE ${where} GROUP BY resource_id ORDER BY bytes DESC, resource LIMIT 20`;
    case 'topAddresses': return `SELECT remote_addr AS network, count() AS requests, sum(bytes_sent) AS bytes FROM http_log WHERE ${where} GROUP BY remote_addr ORDER BY bytes DESC, network LIMIT 20`;
  }
}

// ---------------------------------------------------------------------------------------

describe('Grafana dashboard', () => {
  let dir: string;
  let ch: ServiceHandle & { url: string };

  const post = async (sql: string, params: Record<string, string> = {}, body?: string): Promise<string> => {
    const url = new URL(ch.url);
    if (!sql.startsWith('CREATE DATABASE')) url.searchParams.set('database', DB);
    if (body !== undefined) url.searchParams.set('query', sql);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const res = await fetch(url, { method: 'POST', body: body ?? sql, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} ${text.trim()}\n-- in --\n${sql}`);
    return text;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'grafana-test-'));
    ch = await startClickHouse({ dir, port: await freePort() });
    await post(`CREATE DATABASE IF NOT EXISTS ${DB}`);
    for (const statement of splitStatements(readFileSync(join(REPO_ROOT, 'etc/clickhouse/schema.sql'), 'utf8'))) await post(statement);
    // Retention is not what this test is about: keep the 35-day-old rows in every table, so
    // that the old range proves the panels skip the minute table although it has the rows.
    for (const table of ['http_log', ...TIERS.map((t) => t.table)]) await post(`ALTER TABLE ${table} REMOVE TTL`);
    const rows = seedRows();
    // Two inserts, so that keys repeat across parts and only sum() gives the totals.
    for (let b = 0; b < 2; b++) await post('INSERT INTO http_log FORMAT TabSeparated', {}, toTsv(rows.filter((_, i) => i % 2 === b)));
    expect((await post('SELECT count() FROM http_log')).trim()).toBe(String(rows.length));
  }, 120_000);

  afterAll(async () => {
    await ch?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('is the generated file, provisionable, with variables that filter every ClickHouse panel', () => {
    expect(readFileSync(DASHBOARD_FILE, 'utf8'), 'regenerate: node test/grafana/buildDashboard.ts --write').toBe(dashboardJson());
    expect(dashboard.uid).toBe('http-log');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);

    // Import: one input per data source, each the default of its data source variable.
    // Provisioning: the variable's default text is the provisioned data source's name.
    const provisioned = readFileSync(join(REPO_ROOT, 'etc/grafana/provisioning/datasources/datasources.yml'), 'utf8');
    expect(dashboard.__inputs.map((input) => input.name)).toEqual(DATA_SOURCES.map((ds) => ds.input));
    for (const ds of DATA_SOURCES) {
      expect(dashboard.__inputs.find((input) => input.name === ds.input), ds.input).toMatchObject({ type: 'datasource', pluginId: ds.type });
      const variable = dashboard.templating.list.find((v) => v.name === ds.variable);
      expect(variable, ds.variable).toMatchObject({ type: 'datasource', query: ds.type, current: { text: ds.provisionedName, value: `\${${ds.input}}` } });
      expect(provisioned).toMatch(new RegExp(`name: ${ds.provisionedName}\\n\\s+type: ${ds.type}\\n\\s+uid: ${ds.provisionedUid}\\n`));
    }
    // No data source is named by uid anywhere: every reference is a data source variable of the right type.
    const references: Array<{ where: string; datasource: unknown }> = [];
    const collect = (node: unknown, where: string): void => {
      if (Array.isArray(node)) node.forEach((item, i) => collect(item, `${where}[${i}]`));
      else if (node !== null && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === 'datasource') references.push({ where, datasource: value });
          collect(value, `${where}.${key}`);
        }
      }
    };
    collect(dashboard.panels, 'panels');
    collect(dashboard.templating.list, 'templating');
    expect(references.length).toBeGreaterThan(allPanels(dashboard.panels).length);
    for (const { where, datasource } of references) {
      const ds = DATA_SOURCES.find((d) => (datasource as { uid?: string }).uid === `\${${d.variable}}`);
      expect(ds, `${where}: ${JSON.stringify(datasource)} does not name a data source variable`).toBeDefined();
      expect((datasource as { type?: string }).type, where).toBe(ds?.type);
    }
    for (const panel of allPanels(dashboard.panels).filter((p) => p.type !== 'row')) {
      expect([CLICKHOUSE.uid, PROMETHEUS.uid], panel.title).toContain(panel.datasource?.uid);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe(panel.datasource?.uid);
    }

    expect(dashboard.templating.list.map((v) => v.name)).toEqual([...DATA_SOURCES.map((ds) => ds.variable), ...VARIABLES.map((v) => v.name), TOPIC_VARIABLE]);
    for (const v of dashboard.templating.list.filter((x) => VARIABLES.some((y) => y.name === x.name))) {
      expect(v, v.name).toMatchObject({ type: 'query', includeAll: true, multi: true, datasource: { uid: CLICKHOUSE.uid } });
      // A custom all value would be sent as a value; "All" must stay $__all to filter nothing.
      expect(v.allValue ?? null, v.name).toBeNull();
    }
    // The topic filter of the Prometheus panels lists the topics the lag gauge reports.
    const topic = dashboard.templating.list.find((v) => v.name === TOPIC_VARIABLE);
    expect(topic).toMatchObject({ type: 'query', includeAll: true, datasource: { uid: PROMETHEUS.uid } });
    expect((topic?.query as { query: string }).query).toBe('label_values(anonymizer_consumer_lag_messages, topic)');

    expect(clickhousePanels.length).toBe(Object.keys(QUERIES).length);
    expect(prometheusPanels.length).toBeGreaterThanOrEqual(5);
    for (const panel of clickhousePanels) {
      const sql = panel.targets?.[0]?.rawSql ?? '';
      expect(queryKeyOf(sql), `${panel.title}: SQL not from buildDashboard.ts QUERIES`).toBeDefined();
      for (const tier of TIERS) expect(sql, panel.title).toContain(`FROM ${tier.table}\n`);
      const branchCount = branchCountOf(sql);
      expect(branchCount, panel.title).toBe(isWholeRange(queryKeyOf(sql)) ? TIERS.length + 1 : TIERS.length);
      for (const v of VARIABLES) {
        const filter = `$__conditionalAll(${v.column} IN (\${${v.name}:singlequote}), $${v.name})`;
        expect(sql.split(filter).length - 1, `${panel.title} filters on $${v.name} in each branch`).toBe(branchCount);
      }
    }
  });

  it('expands every ClickHouse panel the same under both macro parsers', () => {
    for (const panel of clickhousePanels) {
      const sql = panel.targets?.[0]?.rawSql as string;
      for (const range of RANGES) {
        for (const { selected } of SELECTIONS) {
          const opts = { range: { from: range.from * 1000, to: range.to * 1000 }, intervalMs: range.intervalS * 1000, variables: variableStates(selected) };
          const current = expandQuery(sql, opts);
          expect(current, panel.title).not.toMatch(/\$/);
          expect(expandQuery(sql, { ...opts, parser: 'legacy' }), panel.title).toBe(current);
        }
      }
    }
  });

  it('answers every ClickHouse panel from the right rollup, equal to the raw table, for each range and selection', async () => {
    const started = Date.now();
    let queries = 0;
    let resultRows = 0;
    for (const range of RANGES) {
      const wholeHours = expandQuery(`SELECT ${WHOLE_HOURS_TO} > ${WHOLE_HOURS_FROM}`, { range: { from: range.from * 1000, to: range.to * 1000 }, intervalMs: 60_000, variables: [] });
      const hasWholeHours = (await post(wholeHours)).trim() === '1';
      if (range.wholeHours !== undefined) expect(hasWholeHours, `${range.name}: whole hours inside`).toBe(range.wholeHours);
      for (const { name, selected } of SELECTIONS) {
        for (const panel of clickhousePanels) {
          const rawSql = panel.targets?.[0]?.rawSql as string;
          const key = queryKeyOf(rawSql) as QueryKey;
          const where = `${panel.title}, ${range.name}, ${name}`;
          const sql = expandQuery(rawSql, { range: { from: range.from * 1000, to: range.to * 1000 }, intervalMs: range.intervalS * 1000, variables: variableStates(selected) });

          const got = await post(sql);
          const lines = got.split('\n').filter(Boolean);
          expect(lines.length, `${where}: no rows`).toBeGreaterThan(0);
          if (key === 'totals') expect(Number(lines[0]?.split('\t')[0]), `${where}: no requests`).toBeGreaterThan(0);
          expect(got, `${where}: differs from the raw table`).toBe(await post(rawReference(key, range, selected)));

          // Only the tables the range calls for are read; the other branches read no part.
          const expectedTables = tablesRead(key, range, hasWholeHours);
          const estimate = (await post(`EXPLAIN ESTIMATE ${sql}`)).trim().split('\n').map((l) => l.split('\t'));
          for (const [, table, parts, rows] of estimate) {
            if (expectedTables.includes(table as string)) expect(Number(rows), `${where}: ${table} rows`).toBeGreaterThan(0);
            else expect(Number(parts), `${where}: reads ${table}, expected only ${expectedTables.join(' and ')}`).toBe(0);
          }
          for (const table of expectedTables) expect(estimate.map((e) => e[1]), where).toContain(table);

          // Unfiltered, each branch read is answered from an aggregate projection, not the table.
          if (Object.keys(selected).length === 0) {
            const plan = await post(`EXPLAIN projections = 1 ${sql}`);
            // Pruned branches show their table (database.table); a branch that reads shows
            // the projection it reads, or its table if it reads no projection.
            const read = [...plan.matchAll(/ReadFromMergeTree \(([^)]+)\)/g)].map((m) => m[1] as string);
            expect(read.length, `${where}: one read step per branch`).toBe(branchCountOf(rawSql));
            expect(read.filter((r) => !r.includes('.')).length, `${where}: a branch read reads its table itself: ${read.join(', ')}`).toBe(expectedTables.length);
          }
          queries++;
          resultRows += lines.length;
        }
      }
    }
    process.stdout.write(`grafana dashboard: ${queries} panel queries (${RANGES.length} ranges × ${SELECTIONS.length} selections × ${clickhousePanels.length} panels), ${resultRows} result rows, each equal to the raw table; ${Date.now() - started} ms\n`);
  });

  it('lists in each variable the values present in the raw table', async () => {
    const range = { from: (NOW - 7 * DAY) * 1000, to: NOW * 1000 };
    const columns: Record<string, string> = {
      resource: 'toString(resource_id)', status: 'toString(response_status)', cache_status: 'toString(cache_status)', address: 'remote_addr',
    };
    const clickhouseVariables = dashboard.templating.list.filter((x) => VARIABLES.some((y) => y.name === x.name));
    expect(clickhouseVariables.length).toBe(VARIABLES.length);
    for (const v of clickhouseVariables) {
      const rawSql = (v.query as { rawSql: string }).rawSql;
      expect(rawSql).toBe(VARIABLE_QUERIES[v.name as keyof typeof VARIABLE_QUERIES]);
      const options = (await post(expandQuery(rawSql, { range, intervalMs: 60_000, variables: [] }))).split('\n').filter(Boolean);
      const where = `toStartOfDay(timestamp) BETWEEN toStartOfDay(toDateTime(${NOW - 7 * DAY})) AND toDateTime(${NOW})`;
      const raw = (await post(`SELECT DISTINCT ${columns[v.name]} AS x FROM http_log WHERE ${where} AND x != '' ORDER BY x`)).split('\n').filter(Boolean);
      if (v.name === 'resource' || v.name === 'address') {
        // The 100 largest by bytes: all of them here when there are fewer.
        expect(options.length, v.name).toBe(Math.min(100, raw.length));
        for (const option of options) expect(raw, v.name).toContain(option);
      } else {
        expect([...options].sort(), v.name).toEqual(raw);
      }
    }
  });

  it('names in every Prometheus panel only metrics the anonymizer registers, and rates only counters', () => {
    // The registry `run` builds (createPipelineMetrics, registerClientGauges), without side
    // effects, plus any metric other modules register with prom-client.
    const types = new Map<string, string>();
    const registry = new Registry();
    createPipelineMetrics(registry);
    registerClientGauges(registry, { topic: 'http_log', lag: () => new Map(), msUntilNext: () => 0 });
    for (const metric of registry.getMetricsAsArray()) types.set(metric.name, String(metric.type));
    const sources = (readdirSync(join(REPO_ROOT, 'src'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));
    for (const file of sources) {
      const text = readFileSync(join(REPO_ROOT, 'src', file), 'utf8');
      for (const m of text.matchAll(/new (Counter|Gauge|Histogram|Summary)\(\{\s*name: '(\w+)'/g)) types.set(m[2] as string, (m[1] as string).toLowerCase());
    }
    for (const [name, type] of [...types]) {
      if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) types.set(`${name}${suffix}`, 'counter');
    }
    expect(types.get('anonymizer_consumer_lag_messages'), 'the lag gauge was found').toBe('gauge');

    const used = new Set<string>();
    for (const panel of prometheusPanels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        const expr = target.expr ?? '';
        const names = [...expr.matchAll(/\b(anonymizer_\w+)/g)].map((m) => m[1] as string);
        expect(names.length, `${panel.title}: ${expr} names no metric`).toBeGreaterThan(0);
        for (const name of names) {
          expect(types.has(name), `${panel.title}: ${name} is not registered by the anonymizer`).toBe(true);
          used.add(name);
        }
        for (const m of expr.matchAll(/\b(?:rate|increase)\(\s*(\w+)/g)) {
          expect(types.get(m[1] as string), `${panel.title}: rate/increase of ${m[1]}, which is not a counter`).toBe('counter');
        }
        // Every range is Grafana's $__rate_interval (at least four scrapes, and the panel's
        // interval), never a fixed window that shows nothing at a coarse step.
        const calls = [...expr.matchAll(/\b(rate|increase)\(/g)].length;
        const windows = [...expr.matchAll(/\b(?:rate|increase)\(\s*\w+(?:\{[^}]*\})?\[([^\]]+)\]\)/g)].map((m) => m[1]);
        expect(windows.length, `${panel.title}: ${expr}`).toBe(calls);
        for (const window of windows) expect(window, `${panel.title}: ${expr}`).toBe('$__rate_interval');
        expect(expr, panel.title).not.toMatch(/\[\d+[smhdw]\]/);
        if (names.includes('anonymizer_consumer_lag_messages')) expect(expr, panel.title).toContain(`topic=~"$${TOPIC_VARIABLE}"`);
      }
    }
    // The pipeline row covers lag, spool depth, rows per request, the next slot and errors.
    for (const name of ['anonymizer_consumer_lag_messages', 'anonymizer_spool_bytes', 'anonymizer_request_rows_sum', 'anonymizer_next_slot_seconds', 'anonymizer_messages_dead_lettered_total', 'anonymizer_batches_quarantined_total']) {
      expect(used, name).toContain(name);
    }
  });
});

describe('grafanaExpand: the expansion follows the plugin', () => {
  // Vectors from the plugin's README macro table and its CHDatasource.test.ts.
  const range = { from: 1_415_792_726_000, to: 1_447_328_726_000 };
  it('expands the backend macros as documented', () => {
    const expand = (sql: string): string => expandQuery(sql, { range, intervalMs: 20_000, variables: [] });
    expect(expand('WHERE $__timeFilter(time)')).toBe('WHERE time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)');
    expect(expand('WHERE $__timeFilter_ms(time)')).toBe('WHERE time >= fromUnixTimestamp64Milli(1415792726000) AND time <= fromUnixTimestamp64Milli(1447328726000)');
    expect(expand('$__fromTime, $__toTime, $__fromTime_ms')).toBe('toDateTime(1415792726), toDateTime(1447328726), fromUnixTimestamp64Milli(1415792726000)');
    expect(expand('$__timeInterval(ts), $__interval_s')).toBe('toStartOfInterval(toDateTime(ts), INTERVAL 20 second), 20');
    expect(expandQuery('$__interval_s', { range, intervalMs: 200, variables: [] })).toBe('1');
  });

  it('applies $__conditionalAll and the variable formats as the frontend does', () => {
    const sql = 'select foo from table where $__conditionalAll(bar in (${bar:singlequote}), $bar);';
    const all = [{ name: 'bar', value: ['$__all'] }];
    expect(expandQuery(sql, { range, intervalMs: 1_000, variables: all })).toBe('select foo from table where 1=1;');
    expect(expandQuery(sql, { range, intervalMs: 1_000, variables: [{ name: 'bar', value: ['val1', "it's"] }] }))
      .toBe("select foo from table where bar in ('val1','it\\'s');");
    // Without a format, the plugin's own: an array joined in quotes, a single value as is.
    expect(expandQuery('x IN ($bar) AND y = $baz', { range, intervalMs: 1_000, variables: [{ name: 'bar', value: ['a', 'b'] }, { name: 'baz', value: '7' }] }))
      .toBe("x IN ('a','b') AND y = 7");
  });

  it('tells the legacy argument parser apart, so the both-parsers check can fail', () => {
    // An argument-less macro followed later by a parenthesis: the legacy parser swallows it.
    const sql = 'WHERE t >= $__fromTime AND toStartOfHour(t) > 0';
    expect(expandQuery(sql, { range, intervalMs: 1_000, variables: [] })).toBe('WHERE t >= toDateTime(1415792726) AND toStartOfHour(t) > 0');
    expect(expandQuery(sql, { range, intervalMs: 1_000, variables: [], parser: 'legacy' })).toBe('WHERE t >= toDateTime(1415792726) > 0');
  });
});
