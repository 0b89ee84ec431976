import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { createClickHouseHttp } from '../io/clickhouseHttp.ts';
import { ConfigError, ProxyRateLimitedError } from '../errors.ts';
import { BLOCKS_PER_INSERT, MIN_DEDUP_WINDOW_BLOCKS, MIN_DEDUP_WINDOW_SECONDS, dedupWindows, parseOutage } from '../capacity/fleet.ts';
import type { DedupWindows } from '../capacity/fleet.ts';
import { ClusterSchemaError, clusterOperand, schemaStatements } from '../schema/clusterSchema.ts';
import type { ClusterOptions } from '../schema/clusterSchema.ts';
import type { AppConfig } from '../config.ts';
import { progress } from './progress.ts';
import { configFrom, withSettings } from './settings.ts';
import { CLICKHOUSE_CONNECTION_SETTINGS } from '../config.ts';

interface MigrateOptions {
  file: string;
  cluster?: string;
  instances?: string;
  outage?: string;
  print?: boolean;
}

const DEFAULT_SCHEMA = new URL('../../etc/clickhouse/schema.sql', import.meta.url);
/** Above ClickHouse's distributed_ddl_task_timeout (180 s), below the proxy's proxy_read_timeout (300 s). */
const ON_CLUSTER_TIMEOUT_MS = 240_000;

export function migrateCommand(): Command {
  const command = new Command('migrate')
    .description('Apply etc/clickhouse/schema.sql to CLICKHOUSE_URL. Idempotent; through the proxy it waits for each slot.')
    .option('--file <path>', 'the schema file', DEFAULT_SCHEMA.pathname)
    .option('--cluster <name>', 'apply it ON CLUSTER <name> with Replicated engines and replicated dedup windows (docs/schema.md)')
    .option('--instances <n>', 'with --cluster: anonymizer instances inserting into the cluster, for the dedup window (default 1)')
    .option('--outage <duration>', 'with --cluster: the outage the dedup windows cover: 30m, 6h, 2d (default: what SPOOL_MAX_BYTES holds at full load)')
    .option('--print', 'print the statements it would send, one per `;`, and exit without connecting');
  withSettings(command, [...CLICKHOUSE_CONNECTION_SETTINGS, 'PROXY_MIN_INTERVAL_MS', 'PROXY_MARGIN_MS', 'PROXY_MAX_BODY_BYTES', 'SPOOL_MAX_BYTES', 'LOG_LEVEL']);
  command.addHelpText(
    'after',
    `
Each statement is one request. Through a 1 request/minute proxy the second and later
statements wait for their slot, with a countdown.

With --cluster every statement is ON CLUSTER <name>, every table Replicated*MergeTree at
/clickhouse/tables/{shard}/{database}/<table> (each replica's config defines the {shard} and
{replica} macros), and non_replicated_deduplication_window becomes
replicated_deduplication_window and replicated_deduplication_window_seconds, sized so that a
batch retried after the outage is still deduplicated; the line on stderr says how.

Examples:
  anonymizer migrate
  anonymizer migrate --clickhouse-url http://127.0.0.1:8123     (straight to ClickHouse: no waiting)
  anonymizer migrate --cluster logs --instances 12 --outage 6h --print`,
  );
  command.action(async (options: MigrateOptions, self: Command) => {
    const config = configFrom(self);
    const cluster = clusterOptions(options, config);
    const statements = schemaStatements(splitStatements(await readFile(options.file, 'utf8')), cluster);
    if (options.print) {
      process.stdout.write(statements.map((statement) => `${statement};\n`).join('\n'));
      return;
    }
    // An ON CLUSTER statement answers only when every host has run it, or after
    // distributed_ddl_task_timeout (180 s) with the hosts that have not: wait for that answer.
    const clickhouse = createClickHouseHttp({ ...config.clickhouse, ...(cluster ? { timeoutMs: ON_CLUSTER_TIMEOUT_MS } : {}) });
    const slotMs = config.proxyMinIntervalMs + config.proxyMarginMs;
    let lastAccepted = 0;
    try {
      for (const [index, statement] of statements.entries()) {
        const label = `${index + 1}/${statements.length} ${statement.split('\n').find((line) => line.trim() && !line.trim().startsWith('--'))?.trim().slice(0, 60) ?? ''}`;
        for (let attempt = 0; ; attempt++) {
          try {
            await clickhouse.query(statement);
            lastAccepted = Date.now();
            process.stderr.write(`migrate: applied ${label}\n`);
            break;
          } catch (error) {
            if (!(error instanceof ProxyRateLimitedError) || attempt >= 20) throw error;
            // The proxy's clock started at our last accepted request; a refusal does not reset it.
            const waitMs = attempt === 0 ? Math.max(1_000, lastAccepted + slotMs - Date.now()) : Math.max(1_000, Math.round(slotMs / 10));
            await countdown(`migrate: waiting for the proxy's next slot for ${label}`, waitMs);
          }
        }
      }
    } finally {
      await clickhouse.close();
    }
  });
  return command;
}

/**
 * The cluster rewrite's options from --cluster, --instances and --outage, or undefined without
 * --cluster. Prints the windows and how they follow from the settings, on stderr.
 */
function clusterOptions(options: MigrateOptions, config: AppConfig): ClusterOptions | undefined {
  if (options.cluster === undefined) {
    if (options.instances !== undefined || options.outage !== undefined) throw new ConfigError('--cluster', '--instances and --outage size the replicated dedup windows: they need --cluster');
    return undefined;
  }
  try {
    clusterOperand(options.cluster);
  } catch (error) {
    if (error instanceof ClusterSchemaError) throw new ConfigError('--cluster', error.message);
    throw error;
  }
  const instances = options.instances === undefined ? 1 : Number(options.instances);
  if (!/^\d+$/.test(options.instances ?? '1') || !Number.isSafeInteger(instances) || instances < 1 || instances > 100_000) {
    throw new ConfigError('--instances', `--instances must be a whole number of instances from 1 to 100000 (got ${JSON.stringify(options.instances)})`);
  }
  const outageSeconds = options.outage === undefined ? undefined : parseOutage(options.outage);
  if (outageSeconds === null) throw new ConfigError('--outage', `--outage must be a duration such as 30m, 6h or 2d, at most 366d (got ${JSON.stringify(options.outage)})`);
  const windows = dedupWindows({
    spoolMaxBytes: config.spoolMaxBytes, batchBytes: config.proxyMaxBodyBytes,
    requestIntervalSeconds: (config.proxyMinIntervalMs + config.proxyMarginMs) / 1000, instances, outageSeconds,
  });
  process.stderr.write(describeWindows(windows, instances, options.outage !== undefined));
  return { cluster: options.cluster, windowBlocks: windows.windowBlocks, windowSeconds: windows.windowSeconds };
}

const hours = (seconds: number): string => `${(seconds / 3_600).toFixed(1)} h`;

/** How the windows were derived, in the terms of docs/schema.md. */
export function describeWindows(w: DedupWindows, instances: number, outageGiven: boolean): string {
  const slot = w.spoolOutageSeconds / w.batchesPerSpool;
  const outage = outageGiven
    ? `an outage of ${hours(w.outageSeconds)} (--outage)`
    : `an outage of ${hours(w.outageSeconds)}, the longest the spool holds at full load: SPOOL_MAX_BYTES ÷ PROXY_MAX_BODY_BYTES = ${w.batchesPerSpool} batches, one sealed per ${slot} s slot`;
  return [
    `migrate: replicated dedup windows for ${outage}, with ${instances} instance(s) inserting:`,
    `migrate:   replicated_deduplication_window = ${w.windowBlocks} (${BLOCKS_PER_INSERT} blocks an insert × ${instances} × ${w.slots} slots = ${w.blocksNeeded}; at least ${MIN_DEDUP_WINDOW_BLOCKS})`,
    `migrate:   replicated_deduplication_window_seconds = ${w.windowSeconds} (the outage + one slot; at least ${MIN_DEDUP_WINDOW_SECONDS})`,
    '',
  ].join('\n');
}

/** Splits on `;` at the end of a line, dropping comment-only pieces. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((piece) => piece.trim())
    .filter((piece) => piece.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('--')));
}

/** On a TTY a progress line counts down; otherwise a line every 10 s, so a log shows it is alive. */
async function countdown(label: string, ms: number): Promise<void> {
  const began = Date.now();
  const end = began + ms;
  const totalSeconds = Math.ceil(ms / 1000);
  const bar = progress(label, totalSeconds, { unit: 's', rate: false });
  let lastPrinted = -1;
  while (Date.now() < end) {
    const seconds = Math.ceil((end - Date.now()) / 1000);
    if (bar.active) bar.update(totalSeconds - seconds, `${seconds} s to the slot`);
    else if (lastPrinted < 0 || lastPrinted - seconds >= 10) {
      process.stderr.write(`${label}: ${seconds} s\n`);
      lastPrinted = seconds;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(1000, end - Date.now())));
  }
  bar.done(`waited ${Math.round((Date.now() - began) / 1000)} s`);
}
