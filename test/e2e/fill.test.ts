// The accelerated end-to-end fill check (docs/performance.md), in CI: `npm run check:fill` (bench/soak.ts
// --check-fill) on a private stack — the real Kafka, the real nginx at 60r/m with the app's
// interval matched, the ClickHouse engine — fed 1.5× the sustainable rate for 5 minutes,
// starting on a backlog. It passes only if every body but the last fills ≥ 95 % of the
// limit, nginx answered no 413, the backlog drained after input stopped, and the raw table
// holds every record exactly once. The script stops everything it started.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SOAK = fileURLToPath(new URL('../../bench/soak.ts', import.meta.url));
const ARGS = ['--minutes', '5', '--factor', '1.5', '--proxy-rate', '60r/m', '--margin-ms', '150', '--max-body', '32k', '--app-delay', '10', '--check-fill'];

/** What bench/soak.ts --json writes. */
interface SoakResult {
  readonly fed: number;
  readonly stored: number;
  readonly distinct: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly passed: boolean;
  readonly fill: { readonly passed: boolean; readonly requestsStored: number; readonly status413: number; readonly bodiesUnderFloor: number; readonly bodiesOverLimit: number };
}

describe('accelerated end-to-end check (npm run check:fill)', () => {
  it('fills every request to ≥ 95 % at 1.5× the sustainable rate, with no 413, and loses nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fill-check-'));
    const resultFile = join(dir, 'result.json');
    try {
      const child = spawn(process.execPath, [SOAK, ...ARGS, '--json', resultFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
      console.info(output.split('\n').filter((line) => line.startsWith('|') || line.includes('check')).join('\n'));
      expect(status, output.slice(-3000)).toBe(0);
      const result = JSON.parse(readFileSync(resultFile, 'utf8')) as SoakResult;
      expect({ lost: result.lost, duplicated: result.duplicated, stored: result.stored }).toEqual({ lost: 0, duplicated: 0, stored: result.fed });
      expect(result.fill).toMatchObject({ passed: true, status413: 0, bodiesUnderFloor: 0, bodiesOverLimit: 0 });
      expect(result.fill.requestsStored).toBeGreaterThan(1);
      expect(result.passed).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20 * 60_000);
});
