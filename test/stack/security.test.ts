// The secured local stack (STACK_SECURITY=tls) on real components: a Kafka broker with a
// SASL_SSL listener (SCRAM-SHA-512) and an SSL listener that requires a client certificate,
// and the real nginx ch-proxy serving https, all with certificates from the stack's own CA.
// Checked with kafkajs's own `ssl`/`sasl` options (what the product builds on), with kcat
// (librdkafka, an independent client) and with undici: the right credentials get through,
// and a wrong password, an untrusted certificate and a missing client certificate do not.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSecret } from '../../stack/index.ts';
import { createTopic, startE2EStack, type E2EStack, type Proxy, type SecuredKafka } from '../support/e2eStack.ts';

let stack: E2EStack;
let secured: SecuredKafka;
let proxy: Proxy;

beforeAll(async () => {
  stack = await startE2EStack('security', { security: 'tls' });
  secured = stack.secured!;
  proxy = await stack.startProxy({ rate: '600r/m', maxBody: '1m', tls: true });
});

afterAll(async () => {
  await stack?.stop();
});

const scram = (passwordFile: string): SASLOptions => ({ mechanism: 'scram-sha-512', username: secured.username, password: readSecret(passwordFile) });

/** A kafkajs client with no retries and short timeouts: a refusal shows as one error. */
function client(brokers: string, config: Pick<KafkaConfig, 'ssl' | 'sasl'>): Kafka {
  return new Kafka({ clientId: 'security-test', brokers: [brokers], logLevel: logLevel.NOTHING, connectionTimeout: 3_000, authenticationTimeout: 5_000, retry: { retries: 0 }, ...config });
}

type KafkaError = Error & { code?: string; cause?: KafkaError };

/**
 * Connect an admin and list topics; if refused, the kafkajs error under any
 * KafkaJSNumberOfRetriesExceeded wrapper, by name and Node/TLS code.
 */
async function tryAdmin(kafka: Kafka): Promise<{ topics?: string[]; error?: { name: string; code?: string; message: string } }> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    return { topics: await admin.listTopics() };
  } catch (error) {
    let e = error as KafkaError;
    for (let i = 0; i < 5 && e.name === 'KafkaJSNumberOfRetriesExceeded' && e.cause; i++) e = e.cause;
    const code = e.code ?? e.cause?.code;
    return { error: { name: e.name, message: e.message, ...(code ? { code } : {}) } };
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

const ca = (): Buffer[] => [readFileSync(secured.caFile)];
// A certificate the broker's certificate does not chain to: verification must fail on trust, not on the hostname.
const UNTRUSTED = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN']);

describe('SASL_SSL listener (SCRAM-SHA-512)', () => {
  it('accepts the right credentials with the CA, and carries messages', async () => {
    await createTopic(stack, 'sasl_topic', 1);
    const kafka = client(secured.saslSslBrokers, { ssl: { ca: ca() }, sasl: scram(secured.passwordFile) });
    expect((await tryAdmin(kafka)).topics).toContain('sasl_topic');
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'sasl_topic', messages: Array.from({ length: 5 }, (_, i) => ({ value: `m${i}` })) });
    await producer.disconnect();
    const admin = client(stack.brokers, {}).admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets('sasl_topic');
    await admin.disconnect();
    expect(offsets.map((o) => o.high)).toEqual(['5']);
  });

  it('refuses a wrong password with a SASL authentication error', async () => {
    const result = await tryAdmin(client(secured.saslSslBrokers, { ssl: { ca: ca() }, sasl: scram(secured.wrongPasswordFile) }));
    expect(readSecret(secured.wrongPasswordFile)).not.toBe(readSecret(secured.passwordFile));
    expect(result.error?.name, JSON.stringify(result.error)).toBe('KafkaJSSASLAuthenticationError');
  });

  it('fails certificate verification for a client without the CA', async () => {
    const result = await tryAdmin(client(secured.saslSslBrokers, { ssl: true, sasl: scram(secured.passwordFile) }));
    expect(result.error?.name, JSON.stringify(result.error)).toBe('KafkaJSConnectionError');
    expect(UNTRUSTED.has(result.error?.code ?? ''), JSON.stringify(result.error)).toBe(true);
  });
});

describe('SSL listener (client certificates required)', () => {
  it('accepts a client with its certificate', async () => {
    const kafka = client(secured.sslBrokers, { ssl: { ca: ca(), cert: readFileSync(secured.clientCertFile), key: readFileSync(secured.clientKeyFile) } });
    expect((await tryAdmin(kafka)).topics).toEqual(expect.any(Array));
  });

  it('refuses a client without a certificate', async () => {
    const result = await tryAdmin(client(secured.sslBrokers, { ssl: { ca: ca() } }));
    expect(result.topics).toBeUndefined();
    expect(result.error?.name, JSON.stringify(result.error)).toBe('KafkaJSConnectionError');
    expect(result.error?.code, JSON.stringify(result.error)).toBe('ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE'); // the broker's TLS alert 42, bad_certificate
  });
});

describe('kcat (librdkafka) through the secured listeners', () => {
  // librdkafka before 2.6.1 fails SCRAM against Kafka 4.x (stack/kafka.ts), so kcat checks
  // SASL_SSL with PLAIN, which the listener takes for the same user and password.
  function kcat(args: string[], config: Record<string, string>, input?: string) {
    const file = join(stack.dir, `kcat-${Object.keys(config).length}-${args[0]}.conf`);
    writeFileSync(file, Object.entries(config).map(([k, v]) => `${k}=${v}`).join('\n'), { mode: 0o600 });
    return spawnSync('kcat', ['-F', file, ...args], { encoding: 'utf8', timeout: 30_000, ...(input === undefined ? {} : { input }) });
  }
  const saslSsl = () => ({ 'security.protocol': 'SASL_SSL', 'sasl.mechanisms': 'PLAIN', 'sasl.username': secured.username, 'sasl.password': readSecret(secured.passwordFile), 'ssl.ca.location': secured.caFile });
  const mtls = () => ({ 'security.protocol': 'SSL', 'ssl.ca.location': secured.caFile, 'ssl.certificate.location': secured.clientCertFile, 'ssl.key.location': secured.clientKeyFile });

  it('produces through SASL_SSL and consumes back through SSL with a client certificate', async () => {
    await createTopic(stack, 'kcat_topic', 1);
    const lines = Array.from({ length: 20 }, (_, i) => `line-${i}`);
    const produce = kcat(['-P', '-b', secured.saslSslBrokers, '-t', 'kcat_topic'], saslSsl(), `${lines.join('\n')}\n`);
    expect(produce.status, produce.stderr).toBe(0);
    const consume = kcat(['-C', '-b', secured.sslBrokers, '-t', 'kcat_topic', '-o', 'beginning', '-e', '-q'], mtls());
    expect(consume.status, consume.stderr).toBe(0);
    expect(consume.stdout.trim().split('\n')).toEqual(lines);
    const again = kcat(['-C', '-b', secured.saslSslBrokers, '-t', 'kcat_topic', '-o', 'beginning', '-e', '-q'], saslSsl());
    expect(again.stdout.trim().split('\n')).toHaveLength(20);
  });

  it('is refused with a wrong password', () => {
    const result = kcat(['-L', '-b', secured.saslSslBrokers, '-m', '5'], { ...saslSsl(), 'sasl.password': readSecret(secured.wrongPasswordFile) });
    expect(result.status).not.toBe(0);
  });
});

describe('https ch-proxy', () => {
  it('answers a ClickHouse query for a client that trusts the CA', async () => {
    expect(proxy.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const dispatcher = new Agent({ connect: { ca: readFileSync(proxy.caFile!) } });
    try {
      const response = await fetch(`${proxy.url}/?query=SELECT+40%2B2`, { dispatcher });
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('42\n');
    } finally {
      await dispatcher.close();
    }
  });

  it('is refused by a client without the CA', async () => {
    const dispatcher = new Agent();
    try {
      const error = await fetch(`${proxy.url}/?query=SELECT+1`, { dispatcher }).then(() => undefined, (e: Error & { cause?: { code?: string } }) => e);
      expect(UNTRUSTED.has(error?.cause?.code ?? ''), `cause ${error?.cause?.code}`).toBe(true);
    } finally {
      await dispatcher.close();
    }
  });

  it('does not answer plain http on its port', async () => {
    const plain = await fetch(proxy.url.replace('https:', 'http:') + '/?query=SELECT+1').then((r) => r.status, () => 0);
    // nginx answers plain HTTP on a TLS port with 400 ("The plain HTTP request was sent to HTTPS port").
    expect(plain).toBe(400);
  });
});
