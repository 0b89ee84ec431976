// Issue 4's accelerated end-to-end check, in CI: `npm run check:fill` (bench/soak.ts
// --check-fill) on a private stack — the real Kafka, the real nginx at 60r/m with the app's
// interval matched, the ClickHouse engine — fed 1.5× the sustainable rate for 5 minutes,
// starting on a backlog. It passes only if every body but the last fills ≥ 95 % of the
// limit, nginx answered no 413, the backlog drained after input stopped, and the raw table
// holds every record exactly once. The script stops everything it started.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SOAK = fileURLToPath(new URL('../../bench/soak.ts', import.meta.url));
const ARGS = ['--minutes', '5', '--factor', '1.5', '--proxy-rate', '60r/m', '--margin-ms', '150', '--max-body', '32k', '--app-delay', '10', '--check-fill'];

function row(output: string, name: string): string {
  const match = new RegExp(`^\\| ${name} \\| (.*) \\|$`, 'm').exec(output);
  if (!match) throw new Error(`no "${name}" line in:\n${output}`);
  return match[1]!;
}

describe('accelerated end-to-end check (npm run check:fill)', () => {
  it('fills every request to ≥ 95 % at 1.5× the sustainable rate, with no 413, and loses nothing', async () => {
    const child = spawn(process.execPath, [SOAK, ...ARGS], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    console.info(output.split('\n').filter((line) => line.startsWith('|') || line.includes('check')).join('\n'));
    expect(row(output, 'lost')).toBe('0');
    expect(row(output, 'duplicated')).toBe('0');
    expect(row(output, 'bodies under 95.0 % \\(all but the last\\)')).toBe('0');
    expect(row(output, 'requests stored')).toMatch(/413 to 0,/);
    expect(output).toContain('accelerated end-to-end check: PASSED');
    expect(status, output.slice(-3000)).toBe(0);
  }, 20 * 60_000);
});
