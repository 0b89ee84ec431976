/**
 * Wire protocol: newline-delimited JSON log records (pino) on stderr; pretty-printed on a
 * TTY is left to `pino-pretty` if the operator pipes through it.
 *
 * Redaction is a second line of defence: no component logs a raw client address or a
 * credential on purpose, and these paths are censored should one ever try.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export const REDACTED_PATHS = [
  'password',
  '*.password',
  'key',
  '*.key',
  'headers["x-clickhouse-key"]',
  '*.headers["x-clickhouse-key"]',
  'rawRemoteAddr',
  '*.rawRemoteAddr',
  'remoteAddr',
  '*.remoteAddr',
];

export function createLogger(level: LevelWithSilent, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino({ level, base: { app: 'anonymizer' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination as pino.DestinationStream);
}

export type { Logger };
