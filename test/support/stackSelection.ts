/**
 * Which stack the integration suites run on, decided once per `vitest run` (a globalSetup,
 * so the notice is one line for the whole suite, not one per test file):
 *
 *   STACK unset or `local`   the local stack (stack/index.ts): JVM Kafka, chdb, Debian nginx
 *   STACK=containers         testcontainers (stack/containers.ts), if a container engine
 *                            answers; otherwise one line says so and the local stack is used
 *
 * Test files read the decision with `inject('stack')` (test/support/e2eStack.ts).
 */
import type { TestProject } from 'vitest/node';
import type { EngineProbe } from '../../stack/containers.ts';

export type StackKind = 'local' | 'containers';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackKind;
  }
}

export async function selectStack(env: NodeJS.ProcessEnv, probe: () => Promise<EngineProbe>, say: (line: string) => void): Promise<StackKind> {
  const wanted = env.STACK ?? 'local';
  if (wanted === '' || wanted === 'local') return 'local';
  if (wanted !== 'containers') throw new Error(`STACK must be local or containers (got ${JSON.stringify(wanted)})`);
  const engine = await probe();
  if (!engine.ok) {
    say(`stack: STACK=containers, but no container engine answers (${engine.reason}); using the local stack`);
    return 'local';
  }
  say(`stack: testcontainers on ${engine.engine}`);
  return 'containers';
}

export default async function setup(project: TestProject): Promise<void> {
  // testcontainers is loaded only when asked for: the local runs never pay for it.
  const probe = async (): Promise<EngineProbe> => (await import('../../stack/containers.ts')).probeContainerEngine();
  project.provide('stack', await selectStack(process.env, probe, (line) => process.stderr.write(`${line}\n`)));
}
