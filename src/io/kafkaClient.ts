/**
 * Wire protocol: the Kafka protocol through kafkajs 2.2, over TCP (PLAINTEXT,
 * SASL_PLAINTEXT) or TLS (SSL, SASL_SSL; node:tls with the configured CA, and a client
 * certificate for mTLS), with SASL PLAIN, SCRAM-SHA-256/512 or OAUTHBEARER.
 *
 * Every Kafka client the product makes (the consumer and its admin, the dead-letter
 * producer, the spool's offset reader, `anonymizer produce`) is built here, so each one
 * gets the same security settings, client id and logging: kafkajs's own log lines go
 * through pino, at the product's level.
 */
import { readFileSync } from 'node:fs';
import { Kafka, logLevel as KafkaLogLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaConnection, SaslCredentials, TlsMaterial } from '../connections.ts';
import { PeerUnreachableError } from '../errors.ts';
import { describeConnectFailure } from './connectFailure.ts';
import type { Logger } from './logger.ts';

/** What a client needs: the brokers, and optionally the rest of a {@link KafkaConnection}. */
export type KafkaClientSettings = Pick<KafkaConnection, 'brokers'> & Partial<Omit<KafkaConnection, 'brokers'>>;

export const DEFAULT_CLIENT_ID = 'http-log-anonymizer';

/** pino's level → the most detailed kafkajs level that would still be printed. */
function kafkaLevelFor(level: string): KafkaLogLevel {
  if (level === 'silent') return KafkaLogLevel.NOTHING;
  if (level === 'debug' || level === 'trace') return KafkaLogLevel.DEBUG;
  if (level === 'info') return KafkaLogLevel.INFO;
  return KafkaLogLevel.WARN;
}

function sslOption(tls: TlsMaterial | undefined): KafkaConfig['ssl'] {
  if (tls === undefined) return undefined;
  // No CA file: node's own trust store (a public CA, as MSK and Confluent Cloud use).
  if (Object.keys(tls).length === 0) return true;
  return { ...tls, ...(tls.ca && { ca: [tls.ca] }) };
}

function saslOption(sasl: SaslCredentials | undefined): SASLOptions | undefined {
  if (sasl === undefined) return undefined;
  if (sasl.mechanism === 'OAUTHBEARER') {
    const { tokenFile } = sasl;
    // Read at every authentication: whatever renews the token rewrites the file.
    return { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: readFileSync(tokenFile, 'utf8').trim() }) };
  }
  const mechanism = sasl.mechanism.toLowerCase() as 'plain' | 'scram-sha-256' | 'scram-sha-512';
  return { mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
}

/**
 * The kafkajs configuration of a client. `quiet`: every kafkajs line at debug (a
 * connection check reports its own one line instead of kafkajs's retries).
 */
export function kafkaClientConfig(settings: KafkaClientSettings, log: Logger, options: { quiet?: boolean } = {}): KafkaConfig {
  const ssl = sslOption(settings.tls);
  const sasl = saslOption(settings.sasl);
  return {
    clientId: settings.clientId ?? DEFAULT_CLIENT_ID,
    brokers: [...settings.brokers],
    ...(ssl !== undefined && { ssl }),
    ...(sasl !== undefined && { sasl }),
    // A TLS handshake to a remote cluster takes more than kafkajs's 1 s default.
    connectionTimeout: 5_000,
    authenticationTimeout: 10_000,
    logLevel: options.quiet ? KafkaLogLevel.DEBUG : kafkaLevelFor(log.level),
    logCreator: () => (entry: LogEntry) => {
      const { message, ...extra } = entry.log;
      // kafkajs logs retried, transient failures (coordinator not yet elected, a broker
      // restarting) at ERROR; what is not recovered reaches us as a rejected promise.
      const level = options.quiet ? 'debug' : entry.level <= KafkaLogLevel.WARN ? 'warn' : entry.level === KafkaLogLevel.INFO ? 'info' : 'debug';
      log[level]({ kafkajs: entry.namespace, ...extra }, message);
    },
    retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
  };
}

export function createKafkaClient(settings: KafkaClientSettings, log: Logger): Kafka {
  return new Kafka(kafkaClientConfig(settings, log));
}

/** How long {@link checkKafkaReachable} tries before it reports the brokers unreachable. */
export const KAFKA_CHECK_MS = 15_000;

/**
 * Connects once to the cluster (TCP, TLS, SASL, a metadata request) and returns, or throws
 * a {@link PeerUnreachableError} that names the brokers and the cause, within `timeoutMs`.
 * Run at start, so a wrong address, CA or password is one line, not a minute of retries;
 * once running, a broker that goes away is waited for, as before.
 */
export async function checkKafkaReachable(settings: KafkaClientSettings, log: Logger, timeoutMs = KAFKA_CHECK_MS): Promise<void> {
  const config = kafkaClientConfig(settings, log, { quiet: true });
  const admin = new Kafka({ ...config, retry: { retries: 2, initialRetryTime: 300, maxRetryTime: 1_000 } }).admin();
  const brokers = settings.brokers.join(',');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PeerUnreachableError('Kafka', brokers, `no answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        await admin.describeCluster();
      })().catch((error: unknown) => {
        throw new PeerUnreachableError('Kafka', brokers, describeConnectFailure(error), { cause: error });
      }),
      timedOut,
    ]);
  } catch (error) {
    // Not awaited: a request still in flight to a silent peer would hold the disconnect
    // for kafkajs's whole request timeout (30 s).
    void admin.disconnect().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  await admin.disconnect();
}
