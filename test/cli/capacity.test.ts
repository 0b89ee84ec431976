/**
 * `anonymizer capacity`: the arithmetic of the disk and proxy model (src/capacity/model.ts)
 * and the command as a user meets it (its table, JSON, and one-line errors with exit 2).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fleet } from '../../src/capacity/fleet.ts';
import type { FleetEstimate } from '../../src/capacity/fleet.ts';
import { FLEET_TABLE_HEADER, fleetRow } from '../../src/cli/capacity.ts';
import {
  BYTES_PER_ROW, DISTINCT_KEYS, PARTITION_SECONDS, REALISTIC_ROWS_PER_REQUEST, UNIFORM_ROWS_PER_REQUEST,
  distinctKeys, estimate, parseRate, parseRetention,
} from '../../src/capacity/model.ts';
import type { TableName } from '../../src/capacity/model.ts';
import { BIN } from '../support/e2eStack.ts';

/** The developer's shell may set the pacing settings; the expectations below assume the defaults. */
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.PROXY_MIN_INTERVAL_MS;
  delete env.PROXY_MARGIN_MS;
  delete env.PROXY_MAX_BODY_BYTES;
  delete env.SPOOL_MAX_BYTES;
  return env;
};
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [BIN, 'capacity', ...args], { encoding: 'utf8', env: { ...cleanEnv(), ...env } });
const DAY = 86_400;

describe('capacity model', () => {
  it('parses rates and retentions', () => {
    expect(parseRate('200/s')).toBe(200);
    expect(parseRate('12000/min')).toBe(200);
    expect(parseRate('720000/h')).toBe(200);
    expect(parseRate('200')).toBe(200);
    expect(parseRate('1.5/s')).toBe(1.5);
    for (const bad of ['abc', '', '0/s', '-5/s', '200/day', '200/', '/s']) expect(parseRate(bad), bad).toBeNull();
    expect(parseRetention('12h')).toBe(12 * 3_600);
    expect(parseRetention('7d')).toBe(7 * DAY);
    expect(parseRetention('90d')).toBe(90 * DAY);
    expect(parseRetention('2w')).toBe(14 * DAY);
    for (const bad of ['7', 'd', '0d', '7x', '1.5d', '-1d']) expect(parseRetention(bad), bad).toBeNull();
  });

  it('interpolates the measured distinct-key curve, never above the row count', () => {
    for (const dataset of ['uniform', 'realistic'] as const) {
      // At each measured point the curve is the measurement itself.
      for (const [n, keys] of DISTINCT_KEYS[dataset]) expect(distinctKeys(dataset, n)).toBeCloseTo(keys, 6);
      // Between points: monotonic, and between the neighbours.
      const points = DISTINCT_KEYS[dataset];
      for (let i = 1; i < points.length; i++) {
        const mid = Math.sqrt(points[i - 1]![0] * points[i]![0]);
        const value = distinctKeys(dataset, mid);
        expect(value).toBeGreaterThanOrEqual(points[i - 1]![1]);
        expect(value).toBeLessThanOrEqual(points[i]![1]);
      }
      // Past the last point: continues, capped at n.
      const last = points[points.length - 1]!;
      expect(distinctKeys(dataset, last[0] * 10)).toBeGreaterThan(last[1]);
      expect(distinctKeys(dataset, last[0] * 10)).toBeLessThanOrEqual(last[0] * 10);
      expect(distinctKeys(dataset, 0)).toBe(0);
    }
  });

  it('multiplies rows kept by bytes per row, rounding retention up by a partition', () => {
    const retention: Record<TableName, number> = {
      http_log: 7 * DAY, http_log_totals_1m: 90 * DAY, http_log_totals_1h: 90 * DAY, http_log_totals_1d: 90 * DAY,
    };
    const result = estimate({ rate: 200, dataset: 'realistic', retention });
    const byTable = Object.fromEntries(result.tables.map((t) => [t.table, t]));
    const b = BYTES_PER_ROW.realistic;
    // Raw: 200 rows/s for 7 days plus the day a partition waits for its last row to expire.
    expect(byTable.http_log!.rows).toBe(200 * 8 * DAY);
    expect(byTable.http_log!.bytes).toBeCloseTo(200 * 8 * DAY * b.http_log, 0);
    // Minute table: (90 + 1) days of minutes, each with the distinct keys among 12,000 rows.
    expect(byTable.http_log_totals_1m!.rowsPerBucket).toBeCloseTo(distinctKeys('realistic', 12_000), 6);
    expect(byTable.http_log_totals_1m!.rows).toBeCloseTo(91 * 1_440 * distinctKeys('realistic', 12_000), 0);
    // Hour table: monthly partitions; day table: yearly partitions.
    expect(byTable.http_log_totals_1h!.rows).toBeCloseTo(((90 * DAY + PARTITION_SECONDS.http_log_totals_1h) / 3_600) * distinctKeys('realistic', 720_000), 0);
    expect(byTable.http_log_totals_1d!.rows).toBeCloseTo(((90 * DAY + PARTITION_SECONDS.http_log_totals_1d) / DAY) * distinctKeys('realistic', 17_280_000), 0);
    for (const t of result.tables) expect(t.bytes).toBeCloseTo(t.rows * b[t.table], 0);
    expect(result.totalBytes).toBeCloseTo(result.tables.reduce((s, t) => s + t.rows * b[t.table], 0), 0);
    // A totals bucket never keeps more rows than it received.
    for (const t of result.tables.slice(1)) expect(t.rowsPerBucket).toBeLessThanOrEqual(200 * (t.table.endsWith('1m') ? 60 : t.table.endsWith('1h') ? 3_600 : DAY));
  });

  it('checks the rate against one 1 MiB request a minute', () => {
    const retention = { http_log: DAY, http_log_totals_1m: DAY, http_log_totals_1h: DAY, http_log_totals_1d: DAY };
    const fits = estimate({ rate: 200, dataset: 'uniform', retention }).proxy;
    expect(fits).toMatchObject({ rowsPerRequestNeeded: 12_000, rowsPerRequest: UNIFORM_ROWS_PER_REQUEST, fits: true });
    expect(fits.maxRate).toBeCloseTo(UNIFORM_ROWS_PER_REQUEST / 60, 6);
    // Just above the uniform limit: does not fit; the same rate of realistic rows does.
    const rate = Math.ceil(UNIFORM_ROWS_PER_REQUEST / 60) + 1;
    expect(estimate({ rate, dataset: 'uniform', retention }).proxy.fits).toBe(false);
    expect(estimate({ rate, dataset: 'realistic', retention }).proxy).toMatchObject({ fits: true, rowsPerRequest: REALISTIC_ROWS_PER_REQUEST });
  });

  it('checks against the interval the pipeline keeps, when given one', () => {
    const retention = { http_log: DAY, http_log_totals_1m: DAY, http_log_totals_1h: DAY, http_log_totals_1d: DAY };
    // A rate that fits one request a minute but not one per 63 s.
    const rate = UNIFORM_ROWS_PER_REQUEST / 61.5;
    expect(estimate({ rate, dataset: 'uniform', retention }).proxy.fits).toBe(true);
    const slower = estimate({ rate, dataset: 'uniform', retention, requestIntervalSeconds: 63 }).proxy;
    expect(slower).toMatchObject({ fits: false, requestIntervalSeconds: 63 });
    expect(slower.rowsPerRequestNeeded).toBeCloseTo(rate * 63, 6);
    expect(slower.maxRate).toBeCloseTo(UNIFORM_ROWS_PER_REQUEST / 63, 6);
  });
});

describe('anonymizer capacity', () => {
  it('prints each table, the total and the proxy check', () => {
    const result = run(['--rate', '200/s', '--raw-retention', '7d', '--totals-retention', '90d']);
    expect(result.status, result.stderr).toBe(0);
    for (const table of ['http_log', 'http_log_totals_1m', 'http_log_totals_1h', 'http_log_totals_1d', 'total']) {
      expect(result.stdout).toMatch(new RegExp(`^${table}\\s`, 'm'));
    }
    expect(result.stdout).toMatch(/^http_log\s+7d\s+8d\s+200\/s\s+138,240,000\s/m);
    // The pipeline's default pace: one request per 60 s + 3 s of margin.
    expect(result.stdout).toContain('Proxy: 12,600 rows per request at one request every 63 s');
    expect(result.stdout).toContain(`one 1 MiB request carries ${REALISTIC_ROWS_PER_REQUEST.toLocaleString('en-US')} realistic rows → fits`);
  });

  it('--json gives the same estimate as the model', () => {
    const result = run(['--rate', '12000/min', '--raw-retention', '12h', '--totals-retention', '30d', '--dataset', 'uniform', '--json']);
    expect(result.status, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as { rate: number; totalBytes: number; proxy: { fits: boolean } };
    const expected = estimate({
      rate: 200, dataset: 'uniform',
      retention: { http_log: 12 * 3_600, http_log_totals_1m: 30 * DAY, http_log_totals_1h: 30 * DAY, http_log_totals_1d: 30 * DAY },
    });
    expect(json.rate).toBe(200);
    expect(json.totalBytes).toBeCloseTo(expected.totalBytes, 0);
    expect(json.proxy.fits).toBe(true);
  });

  it('says when the rate does not fit through the proxy', () => {
    const result = run(['--rate', '2000/s', '--dataset', 'uniform']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`does NOT fit: needs ${((2000 * 63) / UNIFORM_ROWS_PER_REQUEST).toFixed(2)} requests every 63 s`);
  });

  it('takes the pace from PROXY_MIN_INTERVAL_MS and PROXY_MARGIN_MS, as run does', () => {
    // 760/s fits one request a minute (45,600 rows) but not one per 63 s (47,880 rows).
    const flags = run(['--rate', '760/s', '--dataset', 'uniform', '--proxy-margin-ms', '0']);
    expect(flags.status, flags.stderr).toBe(0);
    expect(flags.stdout).toContain('fits: 97% of one request every 60 s');
    const env = run(['--rate', '760/s', '--dataset', 'uniform'], { PROXY_MIN_INTERVAL_MS: '30000', PROXY_MARGIN_MS: '1500' });
    expect(env.stdout).toContain('fits: 51% of one request every 31.5 s');
    expect(run(['--rate', '760/s', '--dataset', 'uniform']).stdout).toContain('does NOT fit: needs 1.02 requests every 63 s');
    const bad = run(['--rate', '1', '--proxy-margin-ms', 'x']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe('anonymizer: PROXY_MARGIN_MS must be milliseconds, an integer from 0 to 600000 (got "x")');
    const unpaced = run(['--rate', '1', '--proxy-min-interval-ms', '0', '--proxy-margin-ms', '0']);
    expect(unpaced.status).toBe(2);
    expect(unpaced.stderr).toContain('PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS is 0');
    // Settings capacity does not use cannot make it fail.
    expect(run(['--rate', '1'], { CLICKHOUSE_URL: 'not a url', KAFKA_BROKERS: '' }).status).toBe(0);
  });

  it.each([
    [['--rate', 'abc'], 'anonymizer: --rate must be a rate such as 200/s or 12000/min (got "abc")'],
    [['--rate', '200/day'], 'anonymizer: --rate must be a rate such as 200/s or 12000/min (got "200/day")'],
    [['--rate', '200/s', '--raw-retention', '7x'], 'anonymizer: --raw-retention must be a duration such as 12h, 7d or 90d (got "7x")'],
    [['--rate', '200/s', '--totals-retention', '0d'], 'anonymizer: --totals-retention must be a duration such as 12h, 7d or 90d (got "0d")'],
  ])('%o: one line, exit code 2', (args, line) => {
    const result = run(args);
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe(line);
    expect(result.stdout).toBe('');
  });

  it('a missing --rate or an unknown dataset is a usage error (exit 2)', () => {
    expect(run([]).status).toBe(2);
    expect(run(['--rate', '200/s', '--dataset', 'nope']).status).toBe(2);
  });
});

describe('anonymizer capacity: the fleet', () => {
  const MiB = 1024 ** 2;
  const defaults = { requestIntervalSeconds: 63, batchBytes: MiB, spoolMaxBytes: 2 * 1024 ** 3 };
  const fleetOf = (args: string[]): FleetEstimate & { outageSeconds: number } => {
    const result = run([...args, '--json']);
    expect(result.status, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as { fleet: FleetEstimate & { outageSeconds: number } }).fleet;
  };

  it('prints instances, partitions, spool and the dedup windows the model gives', () => {
    const result = run(['--rate', '100000/s', '--dataset', 'uniform']);
    expect(result.status, result.stderr).toBe(0);
    const f = fleet({ ...defaults, rate: 100_000, dataset: 'uniform', outageSeconds: 6 * 3_600 });
    expect(f.instances).toBe(168);
    expect(result.stdout).toContain('instances:  168 on distinct addresses (at least 135;');
    expect(result.stdout).toContain(`partitions: ${f.partitions} (at least 168:`);
    expect(result.stdout).toContain(`spool:      ${f.spoolBatchesPerInstance} MiB per instance for a 6h outage (${f.spoolBatchesPerInstance} batches; fits in SPOOL_MAX_BYTES)`);
    expect(result.stdout).toContain(`migrate --cluster NAME --instances 168 --outage 6h`);
    expect(result.stdout).toContain(`sets replicated_deduplication_window = ${f.dedup.windowBlocks}, _seconds = ${f.dedup.windowSeconds}`);
  });

  it('--json carries the same fleet; --outage (default 6h) sizes the spool', () => {
    expect(fleetOf(['--rate', '10000/s'])).toEqual({ outageSeconds: 21_600, ...fleet({ ...defaults, rate: 10_000, dataset: 'realistic', outageSeconds: 21_600 }) });
    const twoDays = fleetOf(['--rate', '10000/s', '--outage', '2d']);
    expect(twoDays).toEqual({ outageSeconds: 172_800, ...fleet({ ...defaults, rate: 10_000, dataset: 'realistic', outageSeconds: 172_800 }) });
    expect(fleetOf(['--rate', '10000/s', '--outage', '30m']).spoolBatchesPerInstance).toBeLessThan(twoDays.spoolBatchesPerInstance);
  });

  it('follows SPOOL_MAX_BYTES and PROXY_MAX_BODY_BYTES, and says when the spool is too small', () => {
    const small = run(['--rate', '1000/s', '--dataset', 'uniform', '--outage', '2d'], { SPOOL_MAX_BYTES: String(512 * MiB) });
    expect(small.status, small.stderr).toBe(0);
    const f = fleet({ ...defaults, spoolMaxBytes: 512 * MiB, rate: 1_000, dataset: 'uniform', outageSeconds: 172_800 });
    expect(f.spoolFits).toBe(false);
    expect(small.stdout).toContain(`raise SPOOL_MAX_BYTES to at least ${f.spoolBytesPerInstance}`);
    const half = fleetOf(['--rate', '1000/s', '--proxy-max-body-bytes', String(MiB / 2)]);
    expect(half.spoolBytesPerInstance).toBe(half.spoolBatchesPerInstance * (MiB / 2));
  });

  it.each([
    [['--rate', '200/s', '--outage', '6'], 'anonymizer: --outage must be a duration such as 30m, 6h or 2d, at most 366d (got "6")'],
    [['--rate', '200/s', '--outage', '0h'], 'anonymizer: --outage must be a duration such as 30m, 6h or 2d, at most 366d (got "0h")'],
    [['--rate', '200/s', '--outage', '400d'], 'anonymizer: --outage must be a duration such as 30m, 6h or 2d, at most 366d (got "400d")'],
    [['--rate', '200/s', '--outage', 'soon'], 'anonymizer: --outage must be a duration such as 30m, 6h or 2d, at most 366d (got "soon")'],
  ])('%o: one line, exit code 2', (args, line) => {
    const result = run(args);
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe(line);
    expect(result.stdout).toBe('');
  });

  it('docs/scaling.md\'s fleet table is what capacity prints', () => {
    const doc = readFileSync(new URL('../../docs/scaling.md', import.meta.url), 'utf8');
    const table = /<!-- fleet-table: generated from `anonymizer capacity --json`, checked by test\/cli\/capacity.test.ts -->\n([\s\S]*?)\n<!-- \/fleet-table -->/.exec(doc);
    expect(table, 'docs/scaling.md has no fleet table between its markers').not.toBeNull();
    const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
    const rows = [line(FLEET_TABLE_HEADER), line(FLEET_TABLE_HEADER.map(() => '---'))];
    for (const dataset of ['uniform', 'realistic'] as const) {
      for (const rate of [1_000, 10_000, 100_000, 1_000_000]) {
        const f = fleetOf(['--rate', `${rate}/s`, '--dataset', dataset, '--outage', '6h']);
        rows.push(line(fleetRow(dataset, rate, f)));
      }
    }
    expect(table![1]).toBe(rows.join('\n'));
  });
});
