/**
 * Configuration: environment variables, overridden by command-line flags that mirror
 * them (`KAFKA_BROKERS` ↔ `--kafka-brokers`). Validated once at start with zod; a bad value
 * becomes one `ConfigError` line that names the setting and the expected form.
 */
import { z } from 'zod';
import { CODECS, DEFAULT_LEVEL, LEVEL_RANGE } from './encode/compress.ts';
import { ConfigError } from './errors.ts';
import { resolveClickHouseConnection, resolveKafkaConnection, SECRET_SETTINGS, type ClickHouseConnection, type KafkaConnection, type RawSettings } from './connections.ts';
import type { Codec } from './domain/batch.ts';

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d+$/, `an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `an integer from ${min} to ${max}`).max(max, `an integer from ${min} to ${max}`));

const hostPort = /^[A-Za-z0-9.\-_]+:\d{1,5}$/;

export const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const;

/** Each setting: its schema, default, and the expected form shown when it is wrong. */
const SETTINGS = {
  KAFKA_BROKERS: {
    schema: z
      .string()
      .transform((value) => value.split(',').map((item) => item.trim()).filter(Boolean))
      .pipe(z.array(z.string().regex(hostPort)).min(1)),
    default: '127.0.0.1:9092',
    form: 'a comma-separated list of host:port',
  },
  KAFKA_CLIENT_ID: { schema: z.string().regex(/^[A-Za-z0-9._-]{1,255}$/), default: 'http-log-anonymizer', form: 'a Kafka client id ([A-Za-z0-9._-]), the name broker quotas and logs know this client by' },
  KAFKA_SECURITY_PROTOCOL: {
    schema: z
      .string()
      .transform((value) => value.toUpperCase())
      .pipe(z.enum(SECURITY_PROTOCOLS)),
    default: 'PLAINTEXT',
    form: `one of ${SECURITY_PROTOCOLS.join(', ')} (any case)`,
  },
  KAFKA_SASL_MECHANISM: {
    schema: z
      .string()
      .transform((value) => value.toUpperCase())
      .pipe(z.enum(['', ...SASL_MECHANISMS])),
    default: '',
    form: `one of ${SASL_MECHANISMS.join(', ')} (with a SASL_* protocol)`,
  },
  KAFKA_SASL_USERNAME: { schema: z.string(), default: '', form: 'the SASL user name (PLAIN, SCRAM-*)' },
  KAFKA_SASL_PASSWORD: { schema: z.string(), default: '', form: 'the SASL password (prefer KAFKA_SASL_PASSWORD_FILE)' },
  KAFKA_SASL_PASSWORD_FILE: { schema: z.string(), default: '', form: 'a file holding the SASL password' },
  KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: { schema: z.string(), default: '', form: 'a file holding the OAUTHBEARER token, read again at every authentication (a sidecar may rotate it)' },
  KAFKA_SSL_CA_FILE: { schema: z.string(), default: '', form: "a PEM file of the CA(s) to trust for the brokers' certificates (default: the system's CAs)" },
  KAFKA_SSL_CERT_FILE: { schema: z.string(), default: '', form: 'a PEM client certificate, for mTLS (with KAFKA_SSL_KEY_FILE)' },
  KAFKA_SSL_KEY_FILE: { schema: z.string(), default: '', form: 'the PEM private key of KAFKA_SSL_CERT_FILE' },
  KAFKA_SSL_KEY_PASSWORD: { schema: z.string(), default: '', form: 'the passphrase of an encrypted KAFKA_SSL_KEY_FILE' },
  KAFKA_SSL_KEY_PASSWORD_FILE: { schema: z.string(), default: '', form: 'a file holding the passphrase of KAFKA_SSL_KEY_FILE' },
  KAFKA_TOPIC: { schema: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/), default: 'http_log', form: 'a Kafka topic name' },
  KAFKA_GROUP_ID: { schema: z.string().min(1), default: 'http-log-anonymizer', form: 'a non-empty consumer group id' },
  KAFKA_DLQ_TOPIC: { schema: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/), default: 'http_log_dlq', form: 'a Kafka topic name' },
  CLICKHOUSE_URL: {
    // URL.canParse first: `new URL('127.0.0.1:8124')` throws, and a throw inside a refine
    // escapes zod as an exception instead of becoming this setting's one-line error.
    schema: z.string().refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol)),
    default: 'http://127.0.0.1:8124',
    form: 'an http:// or https:// URL',
  },
  CLICKHOUSE_USER: { schema: z.string().min(1), default: 'default', form: 'a non-empty user name' },
  CLICKHOUSE_PASSWORD: { schema: z.string(), default: '', form: 'a string (prefer CLICKHOUSE_PASSWORD_FILE)' },
  CLICKHOUSE_PASSWORD_FILE: { schema: z.string(), default: '', form: 'a file holding the ClickHouse password' },
  CLICKHOUSE_CA_FILE: { schema: z.string(), default: '', form: "a PEM file of the CA(s) to trust for an https:// CLICKHOUSE_URL (default: the system's CAs)" },
  CLICKHOUSE_CERT_FILE: { schema: z.string(), default: '', form: 'a PEM client certificate for an https:// CLICKHOUSE_URL, for mTLS (with CLICKHOUSE_KEY_FILE)' },
  CLICKHOUSE_KEY_FILE: { schema: z.string(), default: '', form: 'the PEM private key of CLICKHOUSE_CERT_FILE' },
  CLICKHOUSE_KEY_PASSWORD: { schema: z.string(), default: '', form: 'the passphrase of an encrypted CLICKHOUSE_KEY_FILE' },
  CLICKHOUSE_KEY_PASSWORD_FILE: { schema: z.string(), default: '', form: 'a file holding the passphrase of CLICKHOUSE_KEY_FILE' },
  CLICKHOUSE_DATABASE: { schema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), default: 'default', form: 'a database name ([A-Za-z_][A-Za-z0-9_]*)' },
  PROXY_MIN_INTERVAL_MS: { schema: integer(0, 86_400_000), default: '60000', form: 'milliseconds, an integer from 0 to 86400000' },
  // nginx keeps its rate in whole milli-requests per second: 1r/m is stored as 16, not
  // 16.67, so it really passes one request per 62.5 s. 3 s covers that and the transfer.
  PROXY_MARGIN_MS: { schema: integer(0, 600_000), default: '3000', form: 'milliseconds, an integer from 0 to 600000' },
  PROXY_MAX_BODY_BYTES: { schema: integer(1024, 1 << 30), default: '1048576', form: 'bytes, an integer from 1024 to 1073741824' },
  // nginx's budget is per client address: the instances on one host share one slot per interval.
  PROXY_SLOT_DIR: { schema: z.string(), default: '', form: 'a directory shared by the instances on one host (one client address), or empty for none' },
  SPOOL_DIR: { schema: z.string().min(1), default: './var/spool', form: 'a directory path (one per instance)' },
  SPOOL_MAX_BYTES: { schema: integer(1 << 20, Number.MAX_SAFE_INTEGER), default: String(2 * 1024 ** 3), form: 'bytes, an integer ≥ 1048576' },
  INSERT_CODEC: { schema: z.enum(CODECS as [Codec, ...Codec[]]), default: 'br', form: `one of ${CODECS.join(', ')}` },
  INSERT_LEVEL: { schema: z.string().regex(/^\d+$/).transform(Number), default: '', form: 'an integer level for the codec' },
  // Addresses inside URLs (`/proxy?to=10.1.2.3`, a corrupted text pointer) are personal data too.
  ANONYMIZE_URL_ADDRESSES: { schema: z.enum(['0', '1']).transform((value) => value === '1'), default: '1', form: '1 (anonymize IPv4/IPv6 literals in url, like remote_addr) or 0 (keep URLs verbatim)' },
  METRICS_HOST: { schema: z.string().min(1), default: '127.0.0.1', form: 'an address to listen on (0.0.0.0 in a container)' },
  METRICS_PORT: { schema: integer(0, 65_535), default: '9464', form: 'a TCP port, or 0 for none' },
  METRICS_FILE: { schema: z.string(), default: '', form: 'a file path, or empty for none' },
  LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    form: 'one of fatal, error, warn, info, debug, trace, silent',
  },
} as const;

export type SettingName = keyof typeof SETTINGS;

type Parsed<N extends SettingName> = z.output<(typeof SETTINGS)[N]['schema']>;

export interface AppConfig {
  /** Brokers, client id, TLS and SASL: what every Kafka client of the product is built from. */
  readonly kafka: KafkaConnection;
  /** URL, credentials, database and TLS of the ClickHouse endpoint (the proxy). */
  readonly clickhouse: ClickHouseConnection;
  readonly kafkaBrokers: readonly string[];
  readonly kafkaTopic: string;
  readonly kafkaGroupId: string;
  readonly kafkaDlqTopic: string;
  readonly clickhouseUrl: string;
  readonly clickhouseUser: string;
  readonly clickhouseDatabase: string;
  readonly proxyMinIntervalMs: number;
  readonly proxyMarginMs: number;
  readonly proxyMaxBodyBytes: number;
  /** PROXY_SLOT_DIR: the slot ledger shared with the other instances on this address; '' for none. */
  readonly proxySlotDir: string;
  readonly spoolDir: string;
  readonly spoolMaxBytes: number;
  readonly insertCodec: Codec;
  readonly insertLevel: number;
  readonly anonymizeUrlAddresses: boolean;
  readonly metricsHost: string;
  readonly metricsPort: number;
  /** Where `run` writes its final metrics (Prometheus text) when it ends; '' for nowhere. */
  readonly metricsFile: string;
  readonly logLevel: Parsed<'LOG_LEVEL'>;
}

/** `KAFKA_BROKERS` → `kafkaBrokers`, the commander option key of `--kafka-brokers`. */
export function optionKey(setting: SettingName): string {
  return setting.toLowerCase().replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** `KAFKA_BROKERS` → `--kafka-brokers`. */
export function flagName(setting: SettingName): string {
  return `--${setting.toLowerCase().replace(/_/g, '-')}`;
}

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** What every command that talks to Kafka takes: the brokers and how to reach them. */
export const KAFKA_CONNECTION_SETTINGS: readonly SettingName[] = SETTING_NAMES.filter((name) => name === 'KAFKA_BROKERS' || name === 'KAFKA_CLIENT_ID' || /^KAFKA_(SECURITY|SASL|SSL)_/.test(name));
/** What every command that talks to ClickHouse takes. */
export const CLICKHOUSE_CONNECTION_SETTINGS: readonly SettingName[] = SETTING_NAMES.filter((name) => /^CLICKHOUSE_/.test(name));

export function describeSetting(setting: SettingName): string {
  const spec = SETTINGS[setting];
  return `${spec.form}${spec.default === '' ? '' : `; default ${spec.default}`}`;
}

/**
 * Reads one setting from `flags` (commander's option values) or else `env`, for a command
 * that needs only a few. Throws `ConfigError` when it is malformed.
 */
export function readSetting<N extends SettingName>(setting: N, env: NodeJS.ProcessEnv, flags: Readonly<Record<string, unknown>> = {}): Parsed<N> {
  const spec = SETTINGS[setting];
  const flag = flags[optionKey(setting)];
  const raw = typeof flag === 'string' ? flag : (env[setting] ?? spec.default);
  const result = spec.schema.safeParse(raw);
  if (!result.success) {
    // A URL may carry credentials (`https://user:pw@host`): they are masked in the message.
    const masked = setting === 'CLICKHOUSE_URL' ? String(raw).replace(/\/\/[^/@]*@/, '//***@') : raw;
    const shown = (SECRET_SETTINGS as readonly string[]).includes(setting) ? '' : ` (got ${JSON.stringify(masked)})`;
    throw new ConfigError(setting, `${setting} must be ${spec.form}${shown}`);
  }
  return result.data as Parsed<N>;
}

/**
 * Reads every setting from `flags` (commander's option values) or else `env`.
 * Throws `ConfigError` for the first bad one.
 */
export function loadConfig(env: NodeJS.ProcessEnv, flags: Readonly<Record<string, unknown>> = {}): AppConfig {
  const read = <N extends SettingName>(setting: N): Parsed<N> => readSetting(setting, env, flags);
  const insertCodec = read('INSERT_CODEC');
  const levelText = typeof flags[optionKey('INSERT_LEVEL')] === 'string' ? (flags[optionKey('INSERT_LEVEL')] as string) : (env.INSERT_LEVEL ?? '');
  let insertLevel = DEFAULT_LEVEL[insertCodec];
  if (levelText !== '') {
    const [min, max] = LEVEL_RANGE[insertCodec];
    const level = Number(levelText);
    if (!/^\d+$/.test(levelText) || level < min || level > max) {
      throw new ConfigError('INSERT_LEVEL', `INSERT_LEVEL must be an integer from ${min} to ${max} for INSERT_CODEC=${insertCodec} (got ${JSON.stringify(levelText)})`);
    }
    insertLevel = level;
  }
  const raw: RawSettings = (setting) => {
    const flag = flags[optionKey(setting)];
    return typeof flag === 'string' ? flag : (env[setting] ?? '');
  };
  const kafka = resolveKafkaConnection(raw, {
    brokers: read('KAFKA_BROKERS'),
    clientId: read('KAFKA_CLIENT_ID'),
    securityProtocol: read('KAFKA_SECURITY_PROTOCOL'),
    saslMechanism: read('KAFKA_SASL_MECHANISM'),
  });
  const clickhouse = resolveClickHouseConnection(raw, { url: read('CLICKHOUSE_URL'), user: read('CLICKHOUSE_USER'), database: read('CLICKHOUSE_DATABASE') });
  return {
    kafka,
    clickhouse,
    kafkaBrokers: read('KAFKA_BROKERS'),
    kafkaTopic: read('KAFKA_TOPIC'),
    kafkaGroupId: read('KAFKA_GROUP_ID'),
    kafkaDlqTopic: read('KAFKA_DLQ_TOPIC'),
    clickhouseUrl: read('CLICKHOUSE_URL'),
    clickhouseUser: read('CLICKHOUSE_USER'),
    clickhouseDatabase: read('CLICKHOUSE_DATABASE'),
    proxyMinIntervalMs: read('PROXY_MIN_INTERVAL_MS'),
    proxyMarginMs: read('PROXY_MARGIN_MS'),
    proxyMaxBodyBytes: read('PROXY_MAX_BODY_BYTES'),
    proxySlotDir: read('PROXY_SLOT_DIR'),
    spoolDir: read('SPOOL_DIR'),
    spoolMaxBytes: read('SPOOL_MAX_BYTES'),
    insertCodec,
    insertLevel,
    anonymizeUrlAddresses: read('ANONYMIZE_URL_ADDRESSES'),
    metricsHost: read('METRICS_HOST'),
    metricsPort: read('METRICS_PORT'),
    metricsFile: read('METRICS_FILE'),
    logLevel: read('LOG_LEVEL'),
  };
}
