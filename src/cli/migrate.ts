import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { createClickHouseHttp } from '../io/clickhouseHttp.ts';
import { ProxyRateLimitedError } from '../errors.ts';
import { progress } from './progress.ts';
import { configFrom, withSettings } from './settings.ts';
import { CLICKHOUSE_CONNECTION_SETTINGS } from '../config.ts';

const DEFAULT_SCHEMA = new URL('../../etc/clickhouse/schema.sql', import.meta.url);

export function migrateCommand(): Command {
  const command = new Command('migrate')
    .description('Apply etc/clickhouse/schema.sql to CLICKHOUSE_URL. Idempotent; through the proxy it waits for each slot.')
    .option('--file <path>', 'the schema file', DEFAULT_SCHEMA.pathname);
  withSettings(command, [...CLICKHOUSE_CONNECTION_SETTINGS, 'PROXY_MIN_INTERVAL_MS', 'PROXY_MARGIN_MS', 'LOG_LEVEL']);
  command.addHelpText(
    'after',
    `
Each statement is one request. Through a 1 request/minute proxy the second and later
statements wait for their slot, with a countdown.

Examples:
  anonymizer migrate
  anonymizer migrate --clickhouse-url http://127.0.0.1:8123     (straight to ClickHouse: no waiting)`,
  );
  command.action(async (options: { file: string }, self: Command) => {
    const config = configFrom(self);
    const statements = splitStatements(await readFile(options.file, 'utf8'));
    const clickhouse = createClickHouseHttp(config.clickhouse);
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
