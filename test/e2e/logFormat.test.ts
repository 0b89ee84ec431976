// LOG_FORMAT from real `anonymizer` processes: `json` (the default) writes one JSON object a
// line; `text` writes the same events as one readable line each. Checked on the line
// structure (time, level, component, fields), never on wording; and in both formats the
// ClickHouse password never reaches the output, even on the path that logs ClickHouse's
// refusal of it (delivery blocked).
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../stack/index.ts';
import { chQuery, createTopic, runCli, startCli, startE2EStack, type E2EStack } from '../support/e2eStack.ts';
import { metricValue, scrapeMetrics } from '../support/metrics.ts';

type Format = 'json' | 'text';
interface Event { level: string; component?: string; fields: Record<string, string> }

const TEXT_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) (?:\[([^\]\s]+)\] )?(.*)$/;
const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Every stderr line as an event, asserting the format's structure on each. */
function events(stderr: string, format: Format): Event[] {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines.length, stderr).toBeGreaterThan(0);
  return lines.map((line) => {
    if (format === 'json') {
      const record = JSON.parse(line) as Record<string, unknown>;
      expect(record, line).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String), app: 'anonymizer' });
      const fields = Object.fromEntries(Object.entries(record).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)]));
      return { level: LEVEL_NAMES[record.level as number]!, ...(typeof record.component === 'string' ? { component: record.component } : {}), fields };
    }
    expect(() => JSON.parse(line), `a JSON line in text format: ${line}`).toThrow();
    const match = TEXT_LINE.exec(line);
    expect(match, `not a text log line: ${line}`).not.toBeNull();
    expect(Number.isNaN(Date.parse(match![1]!))).toBe(false);
    const fields = Object.fromEntries([...match![4]!.matchAll(/ ([A-Za-z_][\w]*)=("(?:[^"\\]|\\.)*"|\S+)/g)].map((m) => [m[1]!, m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!]));
    return { level: match![2]!.trim(), ...(match![3] ? { component: match![3] } : {}), fields };
  });
}

/** A spool holding two files that fail their check: opening it quarantines and logs both. */
function damagedSpool(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'batches'), { recursive: true });
  writeFileSync(join(dir, 'batches', '000000000001-3f2a.batch'), 'garbage');
  writeFileSync(join(dir, 'batches', 'junk.batch'), 'junk');
  return dir;
}

describe('LOG_FORMAT without a stack: `spool replay` on a damaged spool', () => {
  let root: string;
  beforeAll(() => void (root = mkdtempSync(join(tmpdir(), 'log-format-'))));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('prints the same events in json and in text, one line each', async () => {
    const seen: Record<Format, Event[]> = { json: [], text: [] };
    for (const format of ['json', 'text'] as const) {
      const spool = damagedSpool(root, format);
      const result = await runCli(['spool', 'replay'], { SPOOL_DIR: spool, LOG_FORMAT: format, LOG_LEVEL: 'info' }, 30_000);
      expect(result.status, result.stderr).toBe(0);
      expect(readdirSync(join(spool, 'quarantine')).length, 'both files quarantined').toBeGreaterThanOrEqual(2);
      seen[format] = events(result.stderr, format);
    }
    const shape = (list: Event[]) => list.map((e) => ({ level: e.level, component: e.component, file: e.fields.file, reason: e.fields.reason }));
    expect(shape(seen.text)).toEqual(shape(seen.json));
    expect(seen.json.map((e) => e.level)).toEqual(['ERROR', 'ERROR', 'INFO']);
    expect(seen.json.map((e) => e.fields.file).slice(0, 2).sort()).toEqual(['000000000001-3f2a.batch', 'junk.batch']);
  });

  it('refuses any other LOG_FORMAT at start: one line, exit 2', async () => {
    const result = await runCli(['spool', 'replay'], { SPOOL_DIR: join(root, 'unused'), LOG_FORMAT: 'yaml' }, 30_000);
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('LOG_FORMAT');
  });
});

describe('LOG_FORMAT from `anonymizer run` on a real stack', () => {
  let stack: E2EStack;
  const topic = 'log_format';
  const RECORDS = 600;
  const SECRET = 'pw-Zq8-not-for-logs';

  beforeAll(async () => {
    stack = await startE2EStack('log-format');
    await createTopic(stack, topic);
    await createTopic(stack, `${topic}_dlq`, 1);
    const produce = await runCli(['produce', '--count', String(RECORDS), '--rate', '100000', '--seed', '7'], { KAFKA_BROKERS: stack.brokers, KAFKA_TOPIC: topic });
    expect(produce.status, produce.stderr).toBe(0);
  });
  afterAll(async () => stack?.stop());

  const env = (format: Format, database: string, group: string): Record<string, string> => ({
    KAFKA_BROKERS: stack.brokers,
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: `${topic}_dlq`,
    KAFKA_GROUP_ID: group,
    // ClickHouse itself, no proxy: nothing here is about pacing.
    CLICKHOUSE_URL: stack.clickhouseUrl,
    CLICKHOUSE_DATABASE: database,
    SPOOL_DIR: join(stack.dir, `spool-${group}`),
    PROXY_MIN_INTERVAL_MS: '200',
    PROXY_MARGIN_MS: '0',
    LOG_LEVEL: 'info',
    LOG_FORMAT: format,
  });

  it.each(['json', 'text'] as const)('%s: run --drain stores every record once and logs structured lines', async (format) => {
    const database = `log_format_${format}`;
    await chQuery(stack, `CREATE DATABASE IF NOT EXISTS ${database}`);
    expect((await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: database })).status).toBe(0);
    const result = await runCli(['run', '--drain'], env(format, database, `drain-${format}`), 90_000);
    expect(result.status, result.stderr.slice(-3000)).toBe(0);
    expect((await chQuery(stack, 'SELECT count() FROM http_log', database)).trim()).toBe(String(RECORDS));
    const logged = events(result.stderr, format);
    expect(logged.length).toBeGreaterThanOrEqual(3);
    // The start line and the drain line are INFO events with fields; the spool's own events name their component.
    expect(logged.filter((e) => e.level === 'INFO').length).toBeGreaterThanOrEqual(2);
    expect(logged.some((e) => e.component === 'spool')).toBe(true);
    // The start line: an INFO event whose fields name the topic (and whose level is pino's, not a field's).
    expect(logged.some((e) => e.level === 'INFO' && e.fields.topic === topic)).toBe(true);
    expect(logged.every((e) => Object.values(LEVEL_NAMES).includes(e.level)), 'every line at a pino level').toBe(true);
  });

  it.each(['json', 'text'] as const)('%s: a refused password blocks delivery, and is never printed', async (format) => {
    const database = `log_format_${format}`;
    const port = await freePort();
    const run = startCli(['run'], { ...env(format, database, `blocked-${format}`), CLICKHOUSE_PASSWORD: SECRET, METRICS_PORT: String(port) });
    try {
      let blocked = 0;
      for (let i = 0; i < 150 && blocked === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        blocked = await scrapeMetrics(port).then((samples) => metricValue(samples, 'anonymizer_delivery_blocked'), () => 0);
      }
      expect(blocked, run.output().slice(-3000)).toBe(1);
    } finally {
      run.kill('SIGTERM');
      expect(await Promise.race([run.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))])).toBe(0);
    }
    expect(run.output()).not.toContain(SECRET);
    const logged = events(run.output(), format);
    expect(logged.some((e) => e.level === 'WARN' || e.level === 'ERROR'), 'the blocked delivery is logged').toBe(true);
  });
});
