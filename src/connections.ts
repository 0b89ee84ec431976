/**
 * How the product reaches Kafka and ClickHouse: the security settings of src/config.ts
 * resolved into what the clients take (kafkajs's `ssl`/`sasl`, undici's `connect`), with
 * every file read once at start, so a missing or unreadable file is a configuration error
 * (exit 2) naming its setting, not a failure at the first connection.
 *
 * Secrets (passwords, key passphrases) come from the setting or, following the Docker and
 * Kubernetes secrets convention, from the file named by its `_FILE` twin; never both.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.ts';
import type { SASL_MECHANISMS, SECURITY_PROTOCOLS, SettingName } from './config.ts';

export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number];
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** PEM contents (not paths), as node:tls takes them. */
export interface TlsMaterial {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly passphrase?: string;
}

export type SaslCredentials =
  | { readonly mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; readonly username: string; readonly password: string }
  | { readonly mechanism: 'OAUTHBEARER'; readonly tokenFile: string };

export interface KafkaConnection {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly securityProtocol: SecurityProtocol;
  /** Present when the protocol is SSL or SASL_SSL (empty material: the system's CAs). */
  readonly tls?: TlsMaterial;
  /** Present when the protocol is SASL_PLAINTEXT or SASL_SSL. */
  readonly sasl?: SaslCredentials;
}

export interface ClickHouseConnection {
  readonly url: string;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** For an https:// URL: the CA to trust and the client certificate, when set. */
  readonly tls?: TlsMaterial;
}

/** The secrets, each with a `_FILE` twin. Their values never appear in a message. */
export const SECRET_SETTINGS = ['KAFKA_SASL_PASSWORD', 'KAFKA_SSL_KEY_PASSWORD', 'CLICKHOUSE_PASSWORD', 'CLICKHOUSE_KEY_PASSWORD'] as const satisfies readonly SettingName[];
type SecretSetting = (typeof SECRET_SETTINGS)[number];

/** Reads a setting's raw text ('' when unset), from a flag or the environment. */
export type RawSettings = (setting: SettingName) => string;

/** Reads a file as text; throws a ConfigError naming `setting` when it cannot. */
export function readSettingFile(setting: SettingName, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory, not a file' : code;
    throw new ConfigError(setting, `${setting}: cannot read ${JSON.stringify(path)} (${why})`);
  }
}

/** A secret from its setting or its `_FILE` twin (one trailing newline dropped, as `echo` writes it). */
export function readSecret(raw: RawSettings, setting: SecretSetting): string {
  const fileSetting = `${setting}_FILE` as SettingName;
  const value = raw(setting);
  const file = raw(fileSetting);
  if (value !== '' && file !== '') throw new ConfigError(setting, `set ${setting} or ${fileSetting}, not both`);
  if (file === '') return value;
  return readSettingFile(fileSetting, file).replace(/\r?\n$/, '');
}

function readPem(raw: RawSettings, setting: SettingName): string | undefined {
  const path = raw(setting);
  if (path === '') return undefined;
  const text = readSettingFile(setting, path);
  if (!text.includes('-----BEGIN ')) throw new ConfigError(setting, `${setting}: ${JSON.stringify(path)} is not a PEM file (no -----BEGIN line)`);
  return text;
}

/** CA, client certificate and key (+ passphrase) from `<prefix>_CA_FILE` etc.; a key needs its certificate and the other way round. */
function readTls(raw: RawSettings, names: { ca: SettingName; cert: SettingName; key: SettingName; passphrase: SecretSetting }): TlsMaterial {
  const ca = readPem(raw, names.ca);
  const cert = readPem(raw, names.cert);
  const key = readPem(raw, names.key);
  if ((cert === undefined) !== (key === undefined)) {
    const [set, missing] = cert === undefined ? [names.key, names.cert] : [names.cert, names.key];
    throw new ConfigError(missing, `${set} is set but ${missing} is not: a client certificate needs its key, and a key its certificate`);
  }
  const passphrase = readSecret(raw, names.passphrase);
  if (passphrase !== '' && key === undefined) throw new ConfigError(names.passphrase, `${names.passphrase} is set but ${names.key} is not`);
  return { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }), ...(passphrase && { passphrase }) };
}

const KAFKA_TLS = { ca: 'KAFKA_SSL_CA_FILE', cert: 'KAFKA_SSL_CERT_FILE', key: 'KAFKA_SSL_KEY_FILE', passphrase: 'KAFKA_SSL_KEY_PASSWORD' } as const;
const KAFKA_TLS_SETTINGS: readonly SettingName[] = [...Object.values(KAFKA_TLS), 'KAFKA_SSL_KEY_PASSWORD_FILE'];
const SASL_SETTINGS: readonly SettingName[] = ['KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE', 'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE'];

/** A setting that does nothing under `protocol` is a mistake worth one line, not a silent no-op. */
function refuseUnused(raw: RawSettings, settings: readonly SettingName[], protocol: SecurityProtocol, needs: string): void {
  const set = settings.find((setting) => raw(setting) !== '');
  if (set !== undefined) throw new ConfigError(set, `${set} is set, but KAFKA_SECURITY_PROTOCOL=${protocol} ${needs}`);
}

function readSasl(raw: RawSettings, mechanism: SaslMechanism | ''): SaslCredentials {
  if (mechanism === '') throw new ConfigError('KAFKA_SASL_MECHANISM', `KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER with a SASL_* KAFKA_SECURITY_PROTOCOL`);
  if (mechanism === 'OAUTHBEARER') {
    const tokenFile = raw('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE');
    if (tokenFile === '') throw new ConfigError('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE', 'KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_SASL_OAUTHBEARER_TOKEN_FILE');
    if (readSettingFile('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE', tokenFile).trim() === '') throw new ConfigError('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE', `KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: ${JSON.stringify(tokenFile)} is empty`);
    const unused = (['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE'] as const).find((setting) => raw(setting) !== '');
    if (unused !== undefined) throw new ConfigError(unused, `${unused} is set, but KAFKA_SASL_MECHANISM=OAUTHBEARER takes a token, not a user name or password`);
    return { mechanism, tokenFile };
  }
  const username = raw('KAFKA_SASL_USERNAME');
  const password = readSecret(raw, 'KAFKA_SASL_PASSWORD');
  if (username === '') throw new ConfigError('KAFKA_SASL_USERNAME', `KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_USERNAME`);
  if (password === '') throw new ConfigError('KAFKA_SASL_PASSWORD', `KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE`);
  if (raw('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE') !== '') throw new ConfigError('KAFKA_SASL_OAUTHBEARER_TOKEN_FILE', `KAFKA_SASL_OAUTHBEARER_TOKEN_FILE is set, but KAFKA_SASL_MECHANISM=${mechanism}`);
  return { mechanism, username, password };
}

export function resolveKafkaConnection(
  raw: RawSettings,
  parsed: { brokers: readonly string[]; clientId: string; securityProtocol: SecurityProtocol; saslMechanism: SaslMechanism | '' },
): KafkaConnection {
  const { securityProtocol: protocol } = parsed;
  const withTls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const withSasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';
  if (!withTls) refuseUnused(raw, KAFKA_TLS_SETTINGS, protocol, 'uses no TLS (SSL or SASL_SSL does)');
  if (!withSasl) refuseUnused(raw, SASL_SETTINGS, protocol, 'uses no SASL (SASL_PLAINTEXT or SASL_SSL does)');
  return {
    brokers: parsed.brokers,
    clientId: parsed.clientId,
    securityProtocol: protocol,
    ...(withTls && { tls: readTls(raw, KAFKA_TLS) }),
    ...(withSasl && { sasl: readSasl(raw, parsed.saslMechanism) }),
  };
}

const CLICKHOUSE_TLS = { ca: 'CLICKHOUSE_CA_FILE', cert: 'CLICKHOUSE_CERT_FILE', key: 'CLICKHOUSE_KEY_FILE', passphrase: 'CLICKHOUSE_KEY_PASSWORD' } as const;

export function resolveClickHouseConnection(raw: RawSettings, parsed: { url: string; user: string; database: string }): ClickHouseConnection {
  const https = new URL(parsed.url).protocol === 'https:';
  if (!https) {
    const set = [...Object.values(CLICKHOUSE_TLS), 'CLICKHOUSE_KEY_PASSWORD_FILE' as const].find((setting) => raw(setting) !== '');
    if (set !== undefined) throw new ConfigError(set, `${set} is set, but CLICKHOUSE_URL is not https://`);
  }
  const url = new URL(parsed.url);
  if (url.username !== '' || url.password !== '') {
    // A URL is logged and shown in /readyz: credentials go in their own settings.
    throw new ConfigError('CLICKHOUSE_URL', 'CLICKHOUSE_URL must not hold a user or password: use CLICKHOUSE_USER and CLICKHOUSE_PASSWORD_FILE');
  }
  const tls = https ? readTls(raw, CLICKHOUSE_TLS) : undefined;
  return { url: parsed.url, user: parsed.user, password: readSecret(raw, 'CLICKHOUSE_PASSWORD'), database: parsed.database, ...(tls && { tls }) };
}
