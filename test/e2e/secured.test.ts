/**
 * The product against the secured stack (docs/security.md), real components only: a Kafka
 * broker with a SASL_SSL listener (SCRAM-SHA-512) and an SSL listener requiring client
 * certificates, and the real nginx ch-proxy serving https, all signed by the stack's own CA
 * (stack/tls.ts). `anonymizer produce` then `anonymizer run --drain` through each, exactly
 * N rows stored and offsets committed to the high-water marks; a wrong password, an
 * untrusted broker certificate and an untrusted ClickHouse certificate each stop the run
 * with one stderr line, non-zero, within 30 s, and a rerun with the right settings then
 * stores exactly N: nothing lost.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chQuery, createTopic, offsetsOf, runCli, startE2EStack, type E2EStack, type Proxy, type SecuredKafka } from '../support/e2eStack.ts';

const N = 1_500;
let stack: E2EStack;
let secured: SecuredKafka;
let plainProxy: Proxy;
let tlsProxy: Proxy;

beforeAll(async () => {
  stack = await startE2EStack('secured', { security: 'tls' });
  secured = stack.secured!;
  plainProxy = await stack.startProxy({ rate: '60r/m', maxBody: '1m' });
  tlsProxy = await stack.startProxy({ rate: '60r/m', maxBody: '1m', tls: true });
});

afterAll(async () => {
  await stack?.stop();
});

type Env = Record<string, string>;
const saslSsl = (): Env => ({
  KAFKA_BROKERS: secured.saslSslBrokers,
  KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
  KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
  KAFKA_SASL_USERNAME: secured.username,
  KAFKA_SASL_PASSWORD_FILE: secured.passwordFile,
  KAFKA_SSL_CA_FILE: secured.caFile,
});
const mtls = (): Env => ({
  KAFKA_BROKERS: secured.sslBrokers,
  KAFKA_SECURITY_PROTOCOL: 'SSL',
  KAFKA_SSL_CA_FILE: secured.caFile,
  KAFKA_SSL_CERT_FILE: secured.clientCertFile,
  KAFKA_SSL_KEY_FILE: secured.clientKeyFile,
});
const plaintext = (): Env => ({ KAFKA_BROKERS: stack.brokers });
const viaPlainProxy = (): Env => ({ CLICKHOUSE_URL: plainProxy.url });
const viaTlsProxy = (): Env => ({ CLICKHOUSE_URL: tlsProxy.url, CLICKHOUSE_CA_FILE: tlsProxy.caFile! });

/** stderr's lines, without empty ones. */
const lines = (stderr: string): string[] => stderr.split('\n').filter((line) => line.trim() !== '');

/** A topic, its dead-letter topic and a migrated database, and N records produced with `kafka`. */
async function prepare(name: string, kafka: Env, seed: number) {
  const topic = `sec_${name}`;
  await createTopic(stack, topic);
  await createTopic(stack, `${topic}_dlq`, 1);
  await chQuery(stack, `CREATE DATABASE IF NOT EXISTS sec_${name}`);
  const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: `sec_${name}` });
  expect(migrate.status, migrate.stderr).toBe(0);
  const startMillis = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
  const produce = await runCli(['produce', '--count', String(N), '--rate', '100000', '--seed', String(seed), '--start', String(startMillis)], { ...kafka, KAFKA_TOPIC: topic });
  expect(produce.status, produce.stderr).toBe(0);
  const drain = (env: Env, timeoutMs?: number) =>
    runCli(['run', '--drain'], {
      KAFKA_TOPIC: topic,
      KAFKA_GROUP_ID: `sec-${name}`,
      KAFKA_DLQ_TOPIC: `${topic}_dlq`,
      CLICKHOUSE_DATABASE: `sec_${name}`,
      SPOOL_DIR: join(stack.dir, `spool-${name}`),
      PROXY_MIN_INTERVAL_MS: '1000',
      PROXY_MARGIN_MS: '150',
      ...env,
    }, timeoutMs);
  return { topic, drain, database: `sec_${name}`, group: `sec-${name}` };
}

/** Exactly N distinct rows, and every partition committed to its high-water mark. */
async function expectAllStored(prepared: { topic: string; database: string; group: string }) {
  const [count, distinct] = (await chQuery(stack, 'SELECT count(), uniqExact(url) FROM http_log FORMAT TSV', prepared.database)).trim().split('\t').map(Number);
  expect([count, distinct]).toEqual([N, N]);
  const offsets = await offsetsOf(stack, prepared.group, prepared.topic);
  expect([...offsets.values()].reduce((sum, [, high]) => sum + high, 0)).toBe(N);
  for (const [partition, [committed, high]] of offsets) expect(committed, `partition ${partition}`).toBe(high);
}

const storedRows = async (database: string) => Number((await chQuery(stack, 'SELECT count() FROM http_log FORMAT TSV', database)).trim());

describe('drains through the secured listeners and the https proxy', () => {
  it(`SASL_SSL with SCRAM-SHA-512 and KAFKA_SSL_CA_FILE: exactly ${N} rows`, async () => {
    const prepared = await prepare('sasl', saslSsl(), 1);
    const run = await prepared.drain({ ...saslSsl(), ...viaPlainProxy() });
    expect(run.status, run.stderr.slice(-3000)).toBe(0);
    await expectAllStored(prepared);
  });

  it(`SSL with a client certificate and key: exactly ${N} rows`, async () => {
    const prepared = await prepare('mtls', mtls(), 2);
    const run = await prepared.drain({ ...mtls(), ...viaPlainProxy() });
    expect(run.status, run.stderr.slice(-3000)).toBe(0);
    await expectAllStored(prepared);
  });

  it(`the https proxy with CLICKHOUSE_CA_FILE: exactly ${N} rows`, async () => {
    const prepared = await prepare('https', plaintext(), 3);
    const run = await prepared.drain({ ...plaintext(), ...viaTlsProxy() });
    expect(run.status, run.stderr.slice(-3000)).toBe(0);
    await expectAllStored(prepared);
  });
});

describe('a peer that refuses us: one line, non-zero within 30 s, and a rerun loses nothing', () => {
  it.each([
    ['a wrong SASL password', 'wrongpw', () => saslSsl(), () => ({ ...saslSsl(), KAFKA_SASL_PASSWORD_FILE: secured.wrongPasswordFile, ...viaPlainProxy() }), () => ({ ...saslSsl(), ...viaPlainProxy() })],
    ['an untrusted broker certificate (no KAFKA_SSL_CA_FILE)', 'noca', () => saslSsl(), () => {
      const { KAFKA_SSL_CA_FILE: _, ...withoutCa } = saslSsl();
      return { ...withoutCa, ...viaPlainProxy() };
    }, () => ({ ...saslSsl(), ...viaPlainProxy() })],
    ['an untrusted ClickHouse certificate (no CLICKHOUSE_CA_FILE)', 'nochca', () => plaintext(), () => ({ ...plaintext(), CLICKHOUSE_URL: tlsProxy.url }), () => ({ ...plaintext(), ...viaTlsProxy() })],
  ] as const)('%s', async (_, name, producerEnv, wrongEnv, rightEnv) => {
    const prepared = await prepare(name, producerEnv(), 10 + name.length);
    const refused = await prepared.drain(wrongEnv(), 60_000);
    expect(refused.status, refused.stderr).not.toBe(0);
    expect(refused.status).not.toBeNull();
    expect(refused.seconds).toBeLessThan(30);
    expect(lines(refused.stderr), refused.stderr).toHaveLength(1);
    expect(await storedRows(prepared.database)).toBe(0);
    console.info(`secured ${name}: exit ${refused.status} after ${refused.seconds.toFixed(1)} s: ${lines(refused.stderr)[0]}`);

    const rerun = await prepared.drain(rightEnv());
    expect(rerun.status, rerun.stderr.slice(-3000)).toBe(0);
    await expectAllStored(prepared);
  });
});
