/**
 * The start check (src/io/kafkaClient.ts checkKafkaReachable) makes a broker that is not
 * there at start one line and an exit. A broker that goes away after start is another
 * matter: the run waits for it, reconnects, and loses nothing. On the real stack: the
 * broker is stopped for longer than a fetch's wait while records are being stored, started
 * again on the same storage, and more records arrive after it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../stack/index.ts';
import { startCli, startE2EStack, chQuery, type E2EStack } from '../support/e2eStack.ts';
import { expectNoRawAddress, records, scenarioHelpers, sleep } from '../support/scenario.ts';
import { metricValue, scrapeMetrics } from '../support/metrics.ts';

let stack: E2EStack;

beforeAll(async () => {
  stack = await startE2EStack('broker_restart');
});

afterAll(async () => {
  await stack?.stop();
});

const { scenario, produce, expectExactlyOnce } = scenarioHelpers(() => stack);

async function storedRows(database: string): Promise<number> {
  return Number((await chQuery(stack, 'SELECT count() FROM http_log FORMAT TSV', database)).trim());
}

/** Polls `check` every 250 ms until it holds, or fails after `ms` with `what`. */
async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  for (const end = Date.now() + ms; ; await sleep(250)) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
  }
}

describe('a broker that goes away after start', () => {
  it('is waited for: the run keeps its process, reconnects, stores everything once, and exits 0 on SIGTERM', async () => {
    const s = await scenario('broker_restart');
    await produce(s, 41, 3_000);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    const port = await freePort();
    const run = startCli(['run'], s.env(proxy.url, { METRICS_PORT: String(port), METRICS_HOST: '127.0.0.1' }));
    try {
      await waitFor('first rows stored', 60_000, async () => (await storedRows(s.database)) > 0);
      await stack.stopKafka();
      // Longer than a fetch's wait and kafkajs's connection timeout: the clients see it gone.
      await sleep(8_000);
      expect(await Promise.race([run.exited, sleep(0).then(() => 'running')])).toBe('running');
      await stack.startKafka();
      await produce(s, 42, 2_000);
      const expected = [...records(41, 3_000), ...records(42, 2_000)];
      await waitFor('all 5,000 rows stored', 120_000, async () => (await storedRows(s.database)) >= expected.length);
      // Let the last commit land, then the offsets say nothing is left to read.
      await waitFor('lag back to 0', 30_000, async () => {
        const samples = await scrapeMetrics(port).catch(() => []);
        return samples.some((sample) => sample.name === 'anonymizer_consumer_lag_messages') && metricValue(samples, 'anonymizer_consumer_lag_messages') === 0;
      });
      run.kill('SIGTERM');
      expect(await Promise.race([run.exited, sleep(30_000).then(() => 'timeout')]), run.output().slice(-3000)).toBe(0);
      await expectExactlyOnce(s, expected);
      expectNoRawAddress(run.output(), expected);
    } finally {
      run.kill('SIGKILL');
      await proxy.stop();
    }
  }, 240_000);
});
