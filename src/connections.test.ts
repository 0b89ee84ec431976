import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { configErrorOf } from '../test/support/configError.ts';

const dir = mkdtempSync(join(tmpdir(), 'connections-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const CA = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const CERT = file('cert.pem', '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n');
const KEY = file('key.pem', '-----BEGIN PRIVATE KEY-----\nMIID\n-----END PRIVATE KEY-----\n');
const PASSWORD = file('password', 's3cret-from-file\n');
const TOKEN = file('token', 'eyJhbGciOi.token\n');
const NOT_PEM = file('not.pem', 'hello\n');
const UNREADABLE = file('unreadable', 'x');
chmodSync(UNREADABLE, 0o000);
const MISSING = join(dir, 'missing');

const SCRAM = { KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD_FILE: PASSWORD, KAFKA_SSL_CA_FILE: CA };

describe('connection settings', () => {
  it('SASL_SSL with SCRAM-SHA-512 (any case), the password from a file (trailing newline dropped), and a CA', () => {
    const { kafka } = loadConfig(SCRAM);
    expect(kafka).toEqual({
      brokers: ['127.0.0.1:9092'],
      clientId: 'http-log-anonymizer',
      securityProtocol: 'SASL_SSL',
      tls: { ca: expect.stringContaining('MIIB') },
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'svc', password: 's3cret-from-file' },
    });
  });

  it('SSL with a client certificate (mTLS); SSL with nothing else trusts the system CAs', () => {
    expect(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: CA, KAFKA_SSL_CERT_FILE: CERT, KAFKA_SSL_KEY_FILE: KEY }).kafka.tls).toEqual({
      ca: expect.stringContaining('MIIB'),
      cert: expect.stringContaining('MIIC'),
      key: expect.stringContaining('MIID'),
    });
    expect(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SSL' }).kafka).toMatchObject({ tls: {} });
    expect(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SSL' }).kafka.sasl).toBeUndefined();
  });

  it('SASL_PLAINTEXT with PLAIN has SASL and no TLS; OAUTHBEARER takes a token file', () => {
    const plain = loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }).kafka;
    expect(plain.tls).toBeUndefined();
    expect(plain.sasl).toEqual({ mechanism: 'PLAIN', username: 'u', password: 'p' });
    expect(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: TOKEN }).kafka.sasl).toEqual({ mechanism: 'OAUTHBEARER', tokenFile: TOKEN });
  });

  it('flags mirror the variables: --kafka-sasl-password-file, --clickhouse-ca-file', () => {
    const config = loadConfig(
      { ...SCRAM, KAFKA_SASL_PASSWORD_FILE: '', CLICKHOUSE_URL: 'https://ch.example:8443' },
      { kafkaSaslPasswordFile: PASSWORD, clickhouseCaFile: CA, kafkaClientId: 'edge-eu-1' },
    );
    expect(config.kafka.sasl).toMatchObject({ password: 's3cret-from-file' });
    expect(config.kafka.clientId).toBe('edge-eu-1');
    expect(config.clickhouse.tls).toEqual({ ca: expect.stringContaining('MIIB') });
  });

  it('ClickHouse: the password from CLICKHOUSE_PASSWORD_FILE; a CA, client certificate and key for https://', () => {
    const { clickhouse } = loadConfig({ CLICKHOUSE_URL: 'https://ch.example:8443', CLICKHOUSE_PASSWORD_FILE: PASSWORD, CLICKHOUSE_CA_FILE: CA, CLICKHOUSE_CERT_FILE: CERT, CLICKHOUSE_KEY_FILE: KEY });
    expect(clickhouse).toMatchObject({ url: 'https://ch.example:8443', password: 's3cret-from-file', tls: { ca: expect.any(String), cert: expect.any(String), key: expect.any(String) } });
    expect(loadConfig({ CLICKHOUSE_URL: 'https://ch.example:8443' }).clickhouse.tls).toEqual({});
    expect(loadConfig({}).clickhouse.tls).toBeUndefined();
  });

  const bad: Array<[string, Record<string, string>, string, RegExp]> = [
    ['both forms of a secret', { ...SCRAM, KAFKA_SASL_PASSWORD: 'inline' }, 'KAFKA_SASL_PASSWORD', /^set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both$/],
    ['both forms of the ClickHouse password', { CLICKHOUSE_PASSWORD: 'a', CLICKHOUSE_PASSWORD_FILE: PASSWORD }, 'CLICKHOUSE_PASSWORD', /not both/],
    ['a secret file that does not exist', { CLICKHOUSE_PASSWORD_FILE: MISSING }, 'CLICKHOUSE_PASSWORD_FILE', /^CLICKHOUSE_PASSWORD_FILE: cannot read ".*missing" \(no such file\)$/],
    ['a CA file that does not exist', { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: MISSING }, 'KAFKA_SSL_CA_FILE', /^KAFKA_SSL_CA_FILE: cannot read/],
    ['a directory for a file', { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: dir }, 'KAFKA_SSL_CA_FILE', /a directory, not a file/],
    ['a CA file that is not PEM', { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: NOT_PEM }, 'KAFKA_SSL_CA_FILE', /is not a PEM file/],
    ['an unknown protocol', { KAFKA_SECURITY_PROTOCOL: 'TLS' }, 'KAFKA_SECURITY_PROTOCOL', /^KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL/],
    ['an unknown mechanism', { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'GSSAPI' }, 'KAFKA_SASL_MECHANISM', /^KAFKA_SASL_MECHANISM must be one of/],
    ['a SASL mechanism with SSL', { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SASL_MECHANISM: 'PLAIN' }, 'KAFKA_SASL_MECHANISM', /^KAFKA_SASL_MECHANISM is set, but KAFKA_SECURITY_PROTOCOL=SSL uses no SASL/],
    ['SASL credentials with PLAINTEXT', { KAFKA_SASL_USERNAME: 'u' }, 'KAFKA_SASL_USERNAME', /KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no SASL/],
    ['a CA file with SASL_PLAINTEXT', { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SSL_CA_FILE: CA }, 'KAFKA_SSL_CA_FILE', /uses no TLS/],
    ['SASL without a mechanism', { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }, 'KAFKA_SASL_MECHANISM', /^KAFKA_SASL_MECHANISM must be one of/],
    ['SCRAM without a user', { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256', KAFKA_SASL_PASSWORD: 'p' }, 'KAFKA_SASL_USERNAME', /needs KAFKA_SASL_USERNAME/],
    ['SCRAM without a password', { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256', KAFKA_SASL_USERNAME: 'u' }, 'KAFKA_SASL_PASSWORD', /needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE/],
    ['OAUTHBEARER without a token file', { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER' }, 'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE', /needs KAFKA_SASL_OAUTHBEARER_TOKEN_FILE/],
    ['OAUTHBEARER with a password', { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: TOKEN, KAFKA_SASL_PASSWORD: 'p' }, 'KAFKA_SASL_PASSWORD', /takes a token/],
    ['a client key without a certificate', { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_KEY_FILE: KEY }, 'KAFKA_SSL_CERT_FILE', /^KAFKA_SSL_KEY_FILE is set but KAFKA_SSL_CERT_FILE is not/],
    ['a client certificate without a key', { CLICKHOUSE_URL: 'https://ch:8443', CLICKHOUSE_CERT_FILE: CERT }, 'CLICKHOUSE_KEY_FILE', /^CLICKHOUSE_CERT_FILE is set but CLICKHOUSE_KEY_FILE is not/],
    ['a key passphrase without a key', { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_KEY_PASSWORD: 'pp' }, 'KAFKA_SSL_KEY_PASSWORD', /KAFKA_SSL_KEY_FILE is not/],
    ['a ClickHouse CA with http://', { CLICKHOUSE_CA_FILE: CA }, 'CLICKHOUSE_CA_FILE', /^CLICKHOUSE_CA_FILE is set, but CLICKHOUSE_URL is not https:\/\/$/],
    ['credentials inside CLICKHOUSE_URL', { CLICKHOUSE_URL: 'https://user:hunter2@ch:8443' }, 'CLICKHOUSE_URL', /must not hold a user or password/],
    ['a bad client id', { KAFKA_CLIENT_ID: 'has space' }, 'KAFKA_CLIENT_ID', /^KAFKA_CLIENT_ID must be a Kafka client id/],
  ];
  it.each(bad)('%s: one ConfigError line naming %s', (_, env, setting, message) => {
    const error = configErrorOf(env);
    expect(error.setting).toBe(setting);
    expect(error.message).toMatch(message);
  });

  it('an unreadable file names its setting (skipped as root, who reads any file)', () => {
    if (process.getuid?.() === 0) return;
    expect(() => loadConfig({ CLICKHOUSE_PASSWORD_FILE: UNREADABLE })).toThrow(/CLICKHOUSE_PASSWORD_FILE: cannot read .* \(permission denied\)/);
  });

  it('no secret value appears in any error message', () => {
    const secrets = ['hunter2', 's3cret-from-file', 'inline-secret'];
    const cases: Array<Record<string, string>> = [
      { CLICKHOUSE_URL: 'https://user:hunter2@ch:8443' },
      { CLICKHOUSE_URL: 'htps://user:hunter2@ch:8443' },
      { ...SCRAM, KAFKA_SASL_PASSWORD: 'inline-secret' },
      { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_PASSWORD: 'inline-secret' },
      { CLICKHOUSE_PASSWORD: 'inline-secret', CLICKHOUSE_PASSWORD_FILE: PASSWORD },
      { KAFKA_SSL_KEY_PASSWORD: 'inline-secret' },
    ];
    for (const env of cases) {
      let message = '';
      try {
        loadConfig(env);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).not.toBe('');
      for (const secret of secrets) expect(message).not.toContain(secret);
    }
  });
});
