/**
 * examples/embed.ts runs as a user would run it (its own process, the project's Node), the
 * package's name resolving to its sources (`--conditions=http-log-anonymizer-source`, as
 * `npm run example:embed` does): the whole pipeline from createPipeline, followed with
 * `for await`, a 413 split. That the name resolves from an installed package is
 * test/package/tarball.test.ts's part.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort, startClickHouse } from '../../stack/index.ts';
import { BIN } from '../support/e2eStack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const EXAMPLE = join(ROOT, 'examples', 'embed.ts');
/** How a checkout runs it: the package's own name resolves to src/, never to a dist/ an old build left. */
const SOURCE = '--conditions=http-log-anonymizer-source';

const IPV4 = /\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/;
// The example's IPv6 clients are 2001:db8:<a>:<b>::<c>; anonymized, only 2001:db8:<a>::X may remain.
const IPV6_PAST_48 = /2001:db8:[0-9a-f]+:[0-9a-f]+/i;
const ANONYMIZED = /^(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.X|[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){2}::X|X)$/i;

describe('examples/embed.ts', () => {
  it('a 413 from the sink is split: every decodable record stored once, anonymized, every offset committed, the spool empty', () => {
    // The pipeline believes 4000 bytes; the sink refuses bodies over 1000 as the proxy would:
    // every body of more than ~200 rows, however the seals fall (a seal at an idle slot may
    // send all that is open, under the pipeline's 4000).
    const result = spawnSync(NODE, [SOURCE, EXAMPLE, '--records', '700', '--batch-bytes', '4000', '--proxy-limit', '1000', '--interval-ms', '5'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);

    const lines = result.stdout.trim().split('\n');
    const rows = lines.filter((line) => line.startsWith('row ')).map((line) => JSON.parse(line.slice(4)) as Record<string, unknown>);
    const summaryLine = lines.at(-1)!;
    expect(summaryLine.startsWith('summary ')).toBe(true);
    const summary = JSON.parse(summaryLine.slice('summary '.length)) as Record<string, unknown> & Record<'splits' | 'refused413' | 'requests' | 'batchesStored', number>;

    expect(rows).toHaveLength(700);
    expect(summary).toMatchObject({ records: 700, rowsStored: 700, deadLetters: 1, invalidAddresses: 1, quarantined: 0, spooledAfter: 0, committed: { 0: 700 } });
    // At least one batch refused and split; each refusal split once; every other request stored a batch.
    expect(summary.splits).toBeGreaterThanOrEqual(1);
    expect(summary.refused413).toBe(summary.splits);
    expect(summary.batchesStored).toBeGreaterThan(summary.splits);
    expect(summary.requests).toBe(summary.batchesStored + summary.refused413);
    // Every record once: the example's records have distinct bytes_sent (1000 + i).
    expect(new Set(rows.map((row) => row.bytes_sent)).size).toBe(700);

    for (const row of rows) expect(row.remote_addr).toMatch(ANONYMIZED);
    expect(rows.filter((row) => String(row.remote_addr).includes(':')).length).toBeGreaterThan(0);
    expect(result.stdout).not.toMatch(IPV4);
    expect(result.stdout).not.toMatch(IPV6_PAST_48);
  });

  it('without a 413: one request per batch, nothing split', () => {
    const result = spawnSync(NODE, [SOURCE, EXAMPLE, '--records', '300', '--batch-bytes', '1000', '--interval-ms', '5'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!.slice('summary '.length)) as Record<string, number>;
    expect(summary).toMatchObject({ records: 300, rowsStored: 300, splits: 0, refused413: 0, spooledAfter: 0 });
    expect(summary.batchesStored).toBeGreaterThan(1);
    expect(summary.requests).toBe(summary.batchesStored);
  });

  it('with --clickhouse-url: the same rows land in the real ClickHouse engine (chdb endpoint), with their totals', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'embed-ch-'));
    const clickhouse = await startClickHouse({ dir, port: await freePort() });
    try {
      const migrate = await run(NODE, [BIN, 'migrate', '--clickhouse-url', clickhouse.url]);
      expect(migrate.status, migrate.stderr).toBe(0);
      const result = await run(NODE, [SOURCE, EXAMPLE, '--records', '500', '--batch-bytes', '1000', '--interval-ms', '5', '--clickhouse-url', clickhouse.url]);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!.slice('summary '.length)) as Record<string, number>;
      expect(summary).toMatchObject({ records: 500, rowsStored: 500, deadLetters: 1, spooledAfter: 0 });
      expect(summary.batchesStored).toBeGreaterThan(1);

      const query = async (sql: string) => {
        const response = await fetch(`${clickhouse.url}/?database=default`, { method: 'POST', body: sql });
        const text = await response.text();
        expect(response.status, text).toBe(200);
        return text.trim();
      };
      // Rows, distinct records, and rows whose address is not in anonymized form.
      expect(await query("SELECT count(), uniqExact(bytes_sent), countIf(NOT match(remote_addr, '^(\\d+\\.\\d+\\.\\d+\\.X|[0-9a-f]+:[0-9a-f]+:[0-9a-f]+::X|X)$')) FROM http_log FORMAT TSV")).toBe('500\t500\t0');
      expect(await query('SELECT sum(requests), sum(bytes_sent) = (SELECT sum(bytes_sent) FROM http_log) FROM http_log_totals_1m FORMAT TSV')).toBe('500\t1');
    } finally {
      await clickhouse.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bad argument is one line and exit code 2', () => {
    const result = spawnSync(NODE, [SOURCE, EXAMPLE, '--records', 'many'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe('embed: --records must be a non-negative integer');
  });
});

/** Runs a child to its end without blocking the event loop (the ClickHouse endpoint is in this process's care). */
function run(command: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
