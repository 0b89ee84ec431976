/**
 * STACK=containers runs the integration suites on testcontainers when a container engine
 * answers; without one the suite says so in one line and runs on the local stack. STACK
 * unset changes nothing.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { probeContainerEngine, type EngineProbe } from '../../stack/containers.ts';
import { selectStack } from '../support/stackSelection.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('selectStack', () => {
  const none = async (): Promise<EngineProbe> => ({ ok: false, reason: 'Could not find a working container runtime strategy' });
  const docker = async (): Promise<EngineProbe> => ({ ok: true, engine: 'linux 28.1 at /var/run/docker.sock' });

  it.each([[{}], [{ STACK: '' }], [{ STACK: 'local' }]])('%o: the local stack, without probing or a word', async (env) => {
    const probe = vi.fn(docker);
    const say = vi.fn();
    expect(await selectStack(env, probe, say)).toBe('local');
    expect(probe).not.toHaveBeenCalled();
    expect(say).not.toHaveBeenCalled();
  });

  it('STACK=containers without an engine: one line that says so, and the local stack', async () => {
    const say = vi.fn();
    expect(await selectStack({ STACK: 'containers' }, none, say)).toBe('local');
    expect(say.mock.calls).toEqual([['stack: STACK=containers, but no container engine answers (Could not find a working container runtime strategy); using the local stack']]);
  });

  it('STACK=containers with an engine: testcontainers, named in one line', async () => {
    const say = vi.fn();
    expect(await selectStack({ STACK: 'containers' }, docker, say)).toBe('containers');
    expect(say.mock.calls).toEqual([['stack: testcontainers on linux 28.1 at /var/run/docker.sock']]);
  });

  it('an unknown STACK is an error, not a silent default', async () => {
    await expect(selectStack({ STACK: 'kubernetes' }, docker, vi.fn())).rejects.toThrow('STACK must be local or containers (got "kubernetes")');
  });
});

describe('a vitest run of two integration files', () => {
  const runFixtures = (env: Record<string, string | undefined>) =>
    spawnSync(join(ROOT, 'node_modules', '.bin', 'vitest'), ['run', '--config', 'test/stack/fixtures/selection.config.ts'], {
      cwd: ROOT,
      env: { ...process.env, STACK: undefined, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const noticesIn = (output: string) => output.split('\n').filter((line) => line.startsWith('stack: '));

  it('STACK=containers: exactly one line for the whole run, and every file gets the stack it names', async () => {
    // This machine kind has no engine; on one with Docker the same run must pick containers.
    const engine = await probeContainerEngine();
    const expected = engine.ok ? 'containers' : 'local';
    const result = runFixtures({ STACK: 'containers', EXPECT_STACK: expected });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Tests\s+.*2 passed/);
    const notices = noticesIn(result.stdout + result.stderr);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(engine.ok ? /^stack: testcontainers on / : /^stack: STACK=containers, but no container engine answers \(.+\); using the local stack$/);
  });

  it('STACK unset: the local stack, and not a word about it', () => {
    const result = runFixtures({ EXPECT_STACK: 'local' });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Tests\s+.*2 passed/);
    expect(noticesIn(result.stdout + result.stderr)).toEqual([]);
  });
});
