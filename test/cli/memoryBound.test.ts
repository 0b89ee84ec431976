/**
 * `anonymizer run` started with none of its memory settings (as `npx anonymizer run` or a
 * global install starts it) re-executes itself with them, and stays the process a
 * supervisor knows: SIGTERM to the pid it started stops it gracefully (exit 0, every
 * record stored once), and its exit code is the product's. Both ways of re-executing are
 * run: process.execve (Node ≥ 22.15: the same pid) and a spawned child (older Node, forced
 * here with ANONYMIZER_RELAUNCH=spawn: the parent relays signals and the exit code).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEAP_FLAGS } from '../../src/cli/memoryBound.ts';
import { runCli, startCli, startE2EStack, type E2EStack } from '../support/e2eStack.ts';
import { scenarioHelpers, sleep } from '../support/scenario.ts';

let stack: E2EStack;
const { scenario, produce, expectExactlyOnce } = scenarioHelpers(() => stack);

/** As a plain shell would start it: no allocator settings, no heap cap (empty counts as unset). */
const UNBOUNDED = { MALLOC_ARENA_MAX: '', MALLOC_MMAP_THRESHOLD_: '', NODE_OPTIONS: '', ANONYMIZER_RELAUNCHED: '' };

function environOf(pid: number): Map<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return new Map(entries.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
}
const argvOf = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Kills what a failed test may leave behind: a worker whose parent did not relay the signal. */
function killIfAlive(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The process that does the work: the started pid itself (execve), or its one child (spawn), once it carries the settings. */
async function boundProcess(pid: number, mode: 'execve' | 'spawn'): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const candidate = mode === 'execve' ? pid : childrenOf(pid)[0];
    if (candidate !== undefined && environOf(candidate).get('ANONYMIZER_RELAUNCHED') === '1') return candidate;
    await sleep(100);
  }
  throw new Error(`no re-executed process for ${pid} (${mode})`);
}

describe('run re-executes itself with its memory settings', () => {
  beforeAll(async () => {
    stack = await startE2EStack('memory-bound');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  for (const mode of ['execve', 'spawn'] as const) {
    it(`${mode}: the settings in the working process, SIGTERM to the started pid stops it gracefully, exit 0, every record once`, async () => {
      const s = await scenario(`bound_${mode}`);
      const run = startCli(['run'], { ...s.env(stack.clickhouseUrl), ...UNBOUNDED, ANONYMIZER_RELAUNCH: mode });
      let worker: number | undefined;
      try {
        worker = await boundProcess(run.pid, mode);
        const environ = environOf(worker);
        expect({ arena: environ.get('MALLOC_ARENA_MAX'), mmap: environ.get('MALLOC_MMAP_THRESHOLD_') }).toEqual({ arena: '2', mmap: '131072' });
        for (const flag of HEAP_FLAGS) expect(argvOf(worker)).toContain(flag);
        if (mode === 'execve') expect(worker).toBe(run.pid);
        else expect(environOf(run.pid).get('MALLOC_ARENA_MAX')).toBe('');

        const expected = await produce(s, 71, 1_000);
        let stored = 0;
        for (let i = 0; i < 150 && stored < expected.length; i++) {
          await sleep(200);
          stored = Number((await (await fetch(`${stack.clickhouseUrl}/?database=${s.database}`, { method: 'POST', body: 'SELECT count() FROM http_log' })).text()).trim());
        }
        run.kill('SIGTERM');
        expect(await run.exited, run.output().slice(-3000)).toBe(0);
        // The worker ended with it: no orphan left running.
        expect(existsSync(`/proc/${worker}`)).toBe(false);
        await expectExactlyOnce(s, expected);
      } finally {
        run.kill('SIGKILL');
        if (mode === 'spawn') killIfAlive(worker);
      }
    });
  }

  it('the exit code is the product\'s: a bad setting exits 2 through either way of re-executing', async () => {
    for (const mode of ['execve', 'spawn']) {
      const result = await runCli(['run'], { ...UNBOUNDED, ANONYMIZER_RELAUNCH: mode, KAFKA_BROKERS: stack.brokers, CLICKHOUSE_URL: stack.clickhouseUrl, PROXY_MIN_INTERVAL_MS: 'soon' }, 30_000);
      expect({ mode, status: result.status }).toEqual({ mode, status: 2 });
      expect(result.stderr).toMatch(/PROXY_MIN_INTERVAL_MS/);
    }
  });

  it('spawn: a worker killed by a signal makes the started process end by the same signal', async () => {
    const s = await scenario('bound_killed');
    const run = startCli(['run'], { ...s.env(stack.clickhouseUrl), ...UNBOUNDED, ANONYMIZER_RELAUNCH: 'spawn' });
    try {
      const worker = await boundProcess(run.pid, 'spawn');
      process.kill(worker, 'SIGKILL');
      expect(await run.exited).toBe('SIGKILL');
    } finally {
      run.kill('SIGKILL');
    }
  });
});
