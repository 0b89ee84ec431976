/**
 * Peers that cannot be reached or refuse us, from a real `anonymizer` process: one line on
 * stderr naming the endpoint and the cause, a non-zero exit, in bounded time. And the
 * ClickHouse client's TLS (CA, client certificate) against a real TLS server with
 * certificates made by openssl. The secured Kafka listeners and the TLS proxy are in
 * test/e2e/secured.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkClickHouseTls, createClickHouseHttp } from '../../src/io/clickhouseHttp.ts';
import { NetworkError, PeerUnreachableError } from '../../src/errors.ts';
import { freePort } from '../../stack/index.ts';
import { runCli } from '../support/e2eStack.ts';

const dir = mkdtempSync(join(tmpdir(), 'connectivity-'));
const spool = join(dir, 'spool');

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, a server certificate for 127.0.0.1 signed by it, a client certificate, and a second CA that signed nothing here. */
function makeCertificates(): void {
  for (const ca of ['ca', 'other-ca']) openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`);
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  }
}
const pem = (name: string) => readFileSync(join(dir, name), 'utf8');

/** stderr's lines, without empty ones. */
const lines = (stderr: string) => stderr.split('\n').filter((line) => line.trim() !== '');

let silent: Server;
let silentPort: number;
const silentSockets = new Set<Socket>();
let https: HttpsServer;
let httpsPort: number;
/** What the fake ClickHouse received: the TLS client certificate's CN per request. */
const seenClients: string[] = [];

beforeAll(async () => {
  makeCertificates();
  // A peer that accepts TCP and never says a word: a Kafka behind a broken load balancer.
  silent = createNetServer((socket) => {
    silentSockets.add(socket);
    socket.on('data', () => {});
    socket.on('close', () => silentSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as { port: number }).port;
  // A TLS server standing in for ClickHouse's HTTP interface: answers every query with "1".
  https = createHttpsServer({ key: pem('server.key'), cert: pem('server.pem'), ca: pem('ca.pem'), requestCert: true, rejectUnauthorized: false }, (request, response) => {
    const peer = (request.socket as import('node:tls').TLSSocket).getPeerCertificate();
    seenClients.push(String(peer?.subject?.CN ?? ''));
    request.resume();
    request.on('end', () => response.end('1\n'));
  });
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  httpsPort = (https.address() as { port: number }).port;
});

afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  https?.closeAllConnections();
  await new Promise((resolve) => https?.close(resolve));
});

describe('a Kafka that cannot be reached: one line, exit 1, in bounded time', () => {
  it.each([
    ['nothing listens', async () => `127.0.0.1:${await freePort()}`, /connection refused/, 10],
    ['a name that does not resolve', async () => 'broker.does-not-exist.invalid:9092', /host not resolvable/, 10],
    ['a peer that accepts and never answers', async () => `127.0.0.1:${silentPort}`, /no answer within 15 s/, 30],
  ])('run: %s', async (_, brokers, cause, seconds) => {
    const list = await brokers();
    const result = await runCli(['run'], { KAFKA_BROKERS: list, SPOOL_DIR: spool, LOG_LEVEL: 'info' }, 60_000);
    expect(result.status).toBe(1);
    expect(result.seconds).toBeLessThan(seconds);
    const stderr = lines(result.stderr);
    expect(stderr, result.stderr).toHaveLength(1);
    expect(stderr[0]).toContain(list);
    expect(stderr[0]).toMatch(cause);
    expect(stderr[0]).toMatch(/\[ANON_KAFKA_UNREACHABLE\]$/);
  }, 60_000);

  it('produce: the same check, the same one line', async () => {
    const list = `127.0.0.1:${await freePort()}`;
    const result = await runCli(['produce', '--count', '10'], { KAFKA_BROKERS: list }, 30_000);
    expect(result.status).toBe(1);
    expect(lines(result.stderr)).toHaveLength(1);
    expect(result.stderr).toContain(list);
  });
});

describe('connection settings that cannot work: one line, exit 2, before any connection', () => {
  it.each([
    ['a password file that does not exist', { CLICKHOUSE_PASSWORD_FILE: join(dir, 'nope') }, 'CLICKHOUSE_PASSWORD_FILE'],
    ['a secret in both forms', { CLICKHOUSE_PASSWORD: 'x', CLICKHOUSE_PASSWORD_FILE: join(dir, 'ca.pem') }, 'CLICKHOUSE_PASSWORD'],
    ['a SASL mechanism with SSL', { KAFKA_SECURITY_PROTOCOL: 'ssl', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512' }, 'KAFKA_SASL_MECHANISM'],
    ['a client key without its certificate', { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_KEY_FILE: join(dir, 'client.key') }, 'KAFKA_SSL_CERT_FILE'],
    ['a CA file that is not PEM', { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: join(dir, 'server.ext') }, 'KAFKA_SSL_CA_FILE'],
    ['a ClickHouse CA for an http:// URL', { CLICKHOUSE_CA_FILE: join(dir, 'ca.pem') }, 'CLICKHOUSE_CA_FILE'],
    ['a ClickHouse URL without a scheme', { CLICKHOUSE_URL: '127.0.0.1:8124' }, 'CLICKHOUSE_URL'],
  ])('%s', async (_, env, setting) => {
    // A broker that would refuse: the configuration error must come first.
    const result = await runCli(['run'], { KAFKA_BROKERS: `127.0.0.1:${await freePort()}`, SPOOL_DIR: spool, ...env }, 30_000);
    expect(result.status).toBe(2);
    const stderr = lines(result.stderr);
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toMatch(new RegExp(`^anonymizer: .*${setting}`));
  });

  it('--clickhouse-password-file works as a flag, and the password never shows in an error', async () => {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, 'hunter2-secret\n');
    const result = await runCli(['run', '--clickhouse-password-file', secretFile, '--clickhouse-password', 'inline-secret'], { SPOOL_DIR: spool }, 30_000);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/not both/);
    expect(result.stderr).not.toMatch(/hunter2-secret|inline-secret/);
  });
});

describe('ClickHouse over TLS (real node:tls, certificates from openssl)', () => {
  const url = () => `https://127.0.0.1:${httpsPort}`;

  it('the start check trusts a certificate signed by CLICKHOUSE_CA_FILE and refuses it without', async () => {
    await expect(checkClickHouseTls(url(), { ca: pem('ca.pem') })).resolves.toBeUndefined();
    const untrusted = await checkClickHouseTls(url(), {}).catch((error: unknown) => error);
    expect(untrusted).toBeInstanceOf(PeerUnreachableError);
    expect((untrusted as PeerUnreachableError).reason).toMatch(/certificate not trusted/);
    expect((untrusted as Error).message).toContain(url());
    const otherCa = await checkClickHouseTls(url(), { ca: pem('other-ca.pem') }).catch((error: unknown) => error);
    expect((otherCa as PeerUnreachableError).reason).toMatch(/certificate not trusted/);
  });

  it('queries go through with the CA and present the client certificate (mTLS)', async () => {
    const client = createClickHouseHttp({ url: url(), user: 'default', password: 'pw', database: 'default', tls: { ca: pem('ca.pem'), cert: pem('client.pem'), key: pem('client.key') } });
    try {
      expect((await client.query('SELECT 1')).trim()).toBe('1');
    } finally {
      await client.close();
    }
    expect(seenClients.at(-1)).toBe('client');
  });

  it('without the CA a query fails as a TLS NetworkError naming the URL (delivery: blocked, reason tls)', async () => {
    const client = createClickHouseHttp({ url: url(), user: 'default', password: 'pw', database: 'default' });
    try {
      const error = await client.query('SELECT 1').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(NetworkError);
      expect((error as NetworkError).tls).toBe(true);
      expect((error as Error).message).toContain(url());
      expect((error as Error).message).not.toContain('pw');
    } finally {
      await client.close();
    }
  });
});
