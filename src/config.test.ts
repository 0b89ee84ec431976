import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { configErrorOf } from '../test/support/configError.ts';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      kafkaBrokers: ['127.0.0.1:9092'],
      kafkaTopic: 'http_log',
      kafkaGroupId: 'http-log-anonymizer',
      kafkaDlqTopic: 'http_log_dlq',
      clickhouseUrl: 'http://127.0.0.1:8124',
      clickhouseUser: 'default',
      kafka: { brokers: ['127.0.0.1:9092'], clientId: 'http-log-anonymizer', securityProtocol: 'PLAINTEXT' },
      clickhouse: { url: 'http://127.0.0.1:8124', user: 'default', password: '', database: 'default' },
      proxyMinIntervalMs: 60_000,
      proxyMarginMs: 3_000,
      proxyMaxBodyBytes: 1_048_576,
      insertCodec: 'br',
      insertLevel: 11,
      spoolDir: './var/spool',
      anonymizeUrlAddresses: true,
    });
  });

  it('flags win over the environment', () => {
    const config = loadConfig({ KAFKA_BROKERS: 'a:1', INSERT_CODEC: 'gzip' }, { kafkaBrokers: 'b:2, c:3', insertLevel: '4' });
    expect(config.kafkaBrokers).toEqual(['b:2', 'c:3']);
    expect([config.insertCodec, config.insertLevel]).toEqual(['gzip', 4]);
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ KAFKA_BROKERS: 'no-port' }, /^KAFKA_BROKERS must be a comma-separated list of host:port \(got "no-port"\)$/],
    [{ CLICKHOUSE_URL: 'ftp://x' }, /^CLICKHOUSE_URL must be an http:\/\/ or https:\/\/ URL/],
    [{ PROXY_MIN_INTERVAL_MS: '-5' }, /^PROXY_MIN_INTERVAL_MS must be milliseconds/],
    [{ PROXY_MAX_BODY_BYTES: '10' }, /^PROXY_MAX_BODY_BYTES must be bytes, an integer from 1024/],
    [{ INSERT_CODEC: 'lz4' }, /^INSERT_CODEC must be one of br, zstd, gzip, none/],
    [{ INSERT_CODEC: 'gzip', INSERT_LEVEL: '11' }, /^INSERT_LEVEL must be an integer from 1 to 9 for INSERT_CODEC=gzip/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of/],
    [{ CLICKHOUSE_DATABASE: 'drop table' }, /^CLICKHOUSE_DATABASE must be a database name/],
    [{ ANONYMIZE_URL_ADDRESSES: 'yes' }, /^ANONYMIZE_URL_ADDRESSES must be 1 \(anonymize IPv4\/IPv6 literals in url, like remote_addr\) or 0/],
  ];
  it.each(bad)('%o fails with one line naming the setting', (env, message) => {
    expect(configErrorOf(env).message).toMatch(message);
  });

  it('ANONYMIZE_URL_ADDRESSES=0 (or --anonymize-url-addresses 0) keeps URLs verbatim', () => {
    expect(loadConfig({ ANONYMIZE_URL_ADDRESSES: '0' }).anonymizeUrlAddresses).toBe(false);
    expect(loadConfig({ ANONYMIZE_URL_ADDRESSES: '1' }, { anonymizeUrlAddresses: '0' }).anonymizeUrlAddresses).toBe(false);
    expect(loadConfig({ ANONYMIZE_URL_ADDRESSES: '0' }, { anonymizeUrlAddresses: '1' }).anonymizeUrlAddresses).toBe(true);
  });

  it('never shows the password in an error', () => {
    expect(() => loadConfig({ CLICKHOUSE_PASSWORD: 'secret', KAFKA_TOPIC: 'bad topic!' })).toThrow(/KAFKA_TOPIC/);
  });
});
