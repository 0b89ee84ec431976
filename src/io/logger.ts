/**
 * Wire protocol: log records on stderr, one per line. LOG_FORMAT=json (the default):
 * newline-delimited JSON objects (pino: `level` as a number, `time` in Unix ms, `msg`, the
 * event's fields). LOG_FORMAT=text: the same records, each reformatted into one readable
 * line by textLog.ts (`2026-12-02T00:28:35.990Z WARN  [spool] msg key=value …`).
 *
 * Redaction is a second line of defence: no component logs a raw client address or a
 * credential on purpose, and these paths are censored should one ever try. pino censors
 * before it serializes, and the text format only reformats what pino serialized, so both
 * formats print the same censored events.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { textDestination } from './textLog.ts';

export type LogFormat = 'json' | 'text';

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

export function createLogger(level: LevelWithSilent, destination: NodeJS.WritableStream = process.stderr, format: LogFormat = 'json'): Logger {
  const out = format === 'text' ? textDestination(destination) : (destination as pino.DestinationStream);
  return pino({ level, base: { app: 'anonymizer' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, out);
}

export type { Logger };
