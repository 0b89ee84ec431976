/**
 * `anonymizer capacity`: the disk each table needs for an input rate and retentions, and
 * whether that rate fits through the 1 request/minute proxy. Pure arithmetic over the
 * measured constants of src/capacity/model.ts; it talks to nothing.
 */
import { Command, Option } from 'commander';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import {
  DATASETS, DEFAULT_RETENTION_SECONDS, estimate, parseRate, parseRetention,
} from '../capacity/model.ts';
import type { CapacityEstimate, Dataset, TableName } from '../capacity/model.ts';
import { PARTITIONS_PER_INSTANCE, TARGET_UTILISATION, fleet, parseOutage } from '../capacity/fleet.ts';
import type { FleetEstimate } from '../capacity/fleet.ts';
import { readSetting } from '../config.ts';
import { withSettings } from './settings.ts';

interface CapacityOptions {
  rate: string;
  rawRetention?: string;
  totalsRetention?: string;
  retention1m?: string;
  retention1h?: string;
  retention1d?: string;
  dataset: string;
  outage: string;
  json?: boolean;
}

/** The outage the spool must hold when --outage is not given. */
export const DEFAULT_OUTAGE = '6h';

const rate = z.string().transform((text, ctx) => {
  const value = parseRate(text);
  if (value === null) {
    ctx.addIssue({ code: 'custom', message: `--rate must be a rate such as 200/s or 12000/min (got ${JSON.stringify(text)})` });
    return z.NEVER;
  }
  return value;
});

const outage = z.string().transform((text, ctx) => {
  const value = parseOutage(text);
  if (value === null) {
    ctx.addIssue({ code: 'custom', message: `--outage must be a duration such as 30m, 6h or 2d, at most 366d (got ${JSON.stringify(text)})` });
    return z.NEVER;
  }
  return value;
});

const retention = (flag: string) => z.string().transform((text, ctx) => {
  const value = parseRetention(text);
  if (value === null) {
    ctx.addIssue({ code: 'custom', message: `${flag} must be a duration such as 12h, 7d or 90d (got ${JSON.stringify(text)})` });
    return z.NEVER;
  }
  return value;
});

function parse<T>(schema: z.ZodType<T>, flag: string, value: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new ConfigError(flag, result.error.issues[0]!.message);
  return result.data;
}

export function capacityCommand(): Command {
  const command = new Command('capacity')
    .description('Disk needed per table for an input rate and retentions, and whether the rate fits through the 1 request/minute proxy.')
    .requiredOption('--rate <rate>', 'average input rate: 200/s, 12000/min (a bare number is per second)')
    .option('--raw-retention <duration>', 'retention of the raw table http_log: 12h, 7d, 90d (default: the schema\'s 30d)')
    .option('--totals-retention <duration>', 'retention of all three totals tables (default: the schema\'s 30d, 400d, 1830d)')
    .option('--retention-1m <duration>', 'retention of http_log_totals_1m, overriding --totals-retention')
    .option('--retention-1h <duration>', 'retention of http_log_totals_1h, overriding --totals-retention')
    .option('--retention-1d <duration>', 'retention of http_log_totals_1d, overriding --totals-retention')
    .addOption(new Option('--dataset <name>', 'whose measured constants: uniform (every key unique) or realistic (skewed CDN traffic)').choices([...DATASETS]).default('realistic'))
    .option('--outage <duration>', 'the ClickHouse or proxy outage each instance\'s spool must hold: 30m, 6h, 2d', DEFAULT_OUTAGE)
    .option('--json', 'print the estimate as JSON');
  // The proxy check uses the pace the pipeline really keeps, from the same settings as `run`;
  // the spool and the batches are sized by the same SPOOL_MAX_BYTES and PROXY_MAX_BODY_BYTES.
  withSettings(command, ['PROXY_MIN_INTERVAL_MS', 'PROXY_MARGIN_MS', 'PROXY_MAX_BODY_BYTES', 'SPOOL_MAX_BYTES']);
  command.addHelpText(
    'after',
    `
The constants (bytes per row, distinct totals keys per bucket, rows per 1 MiB request)
are measured by npm run bench:queries and npm run bench:wire; docs/capacity.md explains
the formula. Retention is rounded up by one partition (a day, a month or a year), because
a partition is dropped only when its newest row has expired. The proxy check assumes one
request per PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS (63 s by default), the pace \`run\` keeps.

The fleet (docs/scaling.md): the proxy's budget is per client address, so a rate above one
instance's needs instances on distinct addresses, each planned at ${TARGET_UTILISATION * 100}% of its budget so
that a backlog drains; ${PARTITIONS_PER_INSTANCE} partitions per instance; and a spool per instance that holds
--outage of its input (default ${DEFAULT_OUTAGE}).

Examples:
  anonymizer capacity --rate 200/s --raw-retention 7d --totals-retention 90d
  anonymizer capacity --rate 12000/min --dataset uniform
  anonymizer capacity --rate 100000/s --outage 2d
  anonymizer capacity --rate 500/s --raw-retention 12h --retention-1m 7d --retention-1h 90d --retention-1d 730d`,
  );
  command.action((options: CapacityOptions) => {
    const perSecond = parse(rate, '--rate', options.rate);
    const totals = options.totalsRetention === undefined ? undefined : parse(retention('--totals-retention'), '--totals-retention', options.totalsRetention);
    const pick = (flag: string, value: string | undefined, table: TableName): number =>
      value !== undefined ? parse(retention(flag), flag, value) : table === 'http_log' ? DEFAULT_RETENTION_SECONDS[table] : totals ?? DEFAULT_RETENTION_SECONDS[table];
    const retentions: Record<TableName, number> = {
      http_log: pick('--raw-retention', options.rawRetention, 'http_log'),
      http_log_totals_1m: pick('--retention-1m', options.retention1m, 'http_log_totals_1m'),
      http_log_totals_1h: pick('--retention-1h', options.retention1h, 'http_log_totals_1h'),
      http_log_totals_1d: pick('--retention-1d', options.retention1d, 'http_log_totals_1d'),
    };
    const dataset = options.dataset as Dataset;
    const outageSeconds = parse(outage, '--outage', options.outage);
    // Only the two pacing settings: capacity connects to nothing, so no other setting matters here.
    const flags = command.opts();
    const intervalMs = readSetting('PROXY_MIN_INTERVAL_MS', process.env, flags) + readSetting('PROXY_MARGIN_MS', process.env, flags);
    if (intervalMs <= 0) {
      throw new ConfigError('PROXY_MIN_INTERVAL_MS', 'PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS is 0: the pipeline would not pace its requests, so there is no proxy to check against');
    }
    const requestIntervalSeconds = intervalMs / 1000;
    const result = estimate({ rate: perSecond, dataset, retention: retentions, requestIntervalSeconds });
    const fleetEstimate = fleet({
      rate: perSecond, dataset, requestIntervalSeconds, outageSeconds,
      batchBytes: readSetting('PROXY_MAX_BODY_BYTES', process.env, flags), spoolMaxBytes: readSetting('SPOOL_MAX_BYTES', process.env, flags),
    });
    process.stdout.write(options.json
      ? `${JSON.stringify({ rate: perSecond, dataset, ...result, fleet: { outageSeconds, ...fleetEstimate } }, null, 2)}\n`
      : render(perSecond, dataset, result) + renderFleet(fleetEstimate, options.outage));
  });
  return command;
}

const UNIT_OF_BUCKET: Readonly<Record<string, string>> = {
  http_log: 's', http_log_totals_1m: 'min', http_log_totals_1h: 'h', http_log_totals_1d: 'day',
};

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(seconds: number): string {
  return seconds % 86_400 === 0 ? `${seconds / 86_400}d` : `${(seconds / 3_600).toFixed(seconds % 3_600 === 0 ? 0 : 1)}h`;
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');

function render(rate: number, dataset: Dataset, result: CapacityEstimate): string {
  const rows = [['table', 'retention', 'kept at most', 'rows per bucket', 'rows', 'B/row', 'disk']];
  for (const t of result.tables) {
    rows.push([
      t.table, formatDuration(t.retentionSeconds), formatDuration(t.keptSeconds),
      `${count(t.rowsPerBucket)}/${UNIT_OF_BUCKET[t.table]}`, count(t.rows), t.bytesPerRow.toFixed(1), formatBytes(t.bytes),
    ]);
  }
  rows.push(['total', '', '', '', '', '', formatBytes(result.totalBytes)]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  const p = result.proxy;
  const ratePerMinute = count(rate * 60);
  const every = `${Number(p.requestIntervalSeconds.toFixed(3))} s`;
  const verdict = p.fits
    ? `fits: ${(p.utilisation * 100).toFixed(0)}% of one request every ${every}`
    : `does NOT fit: needs ${p.utilisation.toFixed(2)} requests every ${every}; the pipeline sends one`;
  return [
    `Disk for ${count(rate)} rows/s (${ratePerMinute}/min), ${dataset} dataset constants:`,
    '',
    line(rows[0]!),
    ...rows.slice(1, -1).map(line),
    line(rows[rows.length - 1]!),
    '',
    `Proxy: ${count(p.rowsPerRequestNeeded)} rows per request at one request every ${every} (PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS);`,
    `       one 1 MiB request carries ${count(p.rowsPerRequest)} ${dataset} rows → ${verdict}.`,
    `       The most this dataset sustains is ${count(p.maxRate)} rows/s.`,
    `Totals rows per bucket: distinct (resource, status, cache status, address) among a bucket's rows (docs/capacity.md).`,
    '',
  ].join('\n');
}

const decimal = (n: number, digits: number): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** A duration for people: 45 min, 6.0 h, 2.5 d. */
export function formatSpan(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'never';
  if (seconds < 3_600) return `${Math.ceil(seconds / 60)} min`;
  if (seconds < 2 * 86_400) return `${(seconds / 3_600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

/** The fleet block: instances, partitions, spool, ClickHouse. Also what docs/scaling.md's table is built from. */
export function renderFleet(f: FleetEstimate, outageText: string): string {
  const spoolVerdict = f.spoolFits ? 'fits in SPOOL_MAX_BYTES' : `raise SPOOL_MAX_BYTES to at least ${f.spoolBytesPerInstance}`;
  return [
    '',
    `Fleet (docs/scaling.md): one client address carries at most ${decimal(f.perInstanceMaxRate, 1)} rows/s (rows per request ÷ slot).`,
    `  instances:  ${count(f.instances)} on distinct addresses (at least ${count(f.minInstances)}; planned at ${TARGET_UTILISATION * 100}% of each budget:`,
    `              ${decimal(f.ratePerInstance, 1)} rows/s each, ${(f.utilisation * 100).toFixed(0)}%). Instances behind one address share one budget.`,
    `  partitions: ${count(f.partitions)} (at least ${count(f.minPartitions)}: one instance reads a partition; ${PARTITIONS_PER_INSTANCE} per instance leaves room to grow).`,
    `  spool:      ${formatBytes(f.spoolBytesPerInstance)} per instance for a ${outageText} outage (${count(f.spoolBatchesPerInstance)} batches; ${spoolVerdict});`,
    `              afterwards the backlog drains in ${formatSpan(f.catchUpSeconds)}.`,
    `  ClickHouse: ${decimal(f.insertsPerMinute, 1)} inserts/min into one replica's local tables; migrate --cluster NAME --instances ${f.instances} --outage ${outageText}`,
    `              sets replicated_deduplication_window = ${f.dedup.windowBlocks}, _seconds = ${f.dedup.windowSeconds} (docs/schema.md).`,
    '',
  ].join('\n');
}

/** The columns of docs/scaling.md's fleet table, in order. */
export const FLEET_TABLE_HEADER = [
  'dataset', 'rate (rows/s)', 'instances (addresses): at least / planned', 'per instance', 'partitions',
  'spool per instance (6h outage)', 'backlog drains in', 'inserts/min', 'replicated dedup window (blocks / s)',
] as const;

/** One row of docs/scaling.md's fleet table, from the estimate `capacity --json` prints. */
export function fleetRow(dataset: Dataset, rate: number, f: FleetEstimate): string[] {
  return [
    dataset, count(rate), `${count(f.minInstances)} / **${count(f.instances)}**`,
    `${decimal(f.ratePerInstance, 1)} rows/s (${(f.utilisation * 100).toFixed(0)}%)`, count(f.partitions),
    formatBytes(f.spoolBytesPerInstance), formatSpan(f.catchUpSeconds), decimal(f.insertsPerMinute, 1),
    `${count(f.dedup.windowBlocks)} / ${count(f.dedup.windowSeconds)}`,
  ];
}
