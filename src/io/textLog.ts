/**
 * Wire protocol: in, pino's newline-delimited JSON records; out, the same records as one
 * readable line each (LOG_FORMAT=text), for a person at a terminal:
 *
 *   2026-12-02T00:28:35.990Z WARN  [spool] a file failed its check reason=foreign_name file=junk.batch
 *
 * time (ISO 8601, UTC), level (padded to 5), [component] when there is one, the message,
 * then every other field as key=value in the record's order. A value that is not a plain
 * word (spaces, quotes, `=`, control characters, objects) is written as JSON, so one
 * record is always one line and a field cannot forge another. pino has redacted the record
 * before it is serialized; this only reformats it.
 */
import type { DestinationStream } from 'pino';

const LEVELS: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields shown in the line's head, or constant for the process. */
const HEAD = new Set(['time', 'level', 'msg', 'component', 'app', 'pid', 'hostname']);
const WORD = /^[^\s"'=\\\u0000-\u001f\u007f]+$/u;
const CONTROL = /[\u0000-\u001f\u007f]/u;

function value(raw: unknown): string {
  if (typeof raw === 'string') return WORD.test(raw) ? raw : JSON.stringify(raw);
  if (typeof raw === 'number' || typeof raw === 'boolean' || raw === null) return String(raw);
  return JSON.stringify(raw) ?? String(raw);
}

/** One pino JSON record → one text line (no newline). A line that is not a JSON object is returned unchanged. */
export function formatTextLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(json);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return json;
    record = parsed as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString() : String(record.time ?? '-');
  const level = (typeof record.level === 'number' ? (LEVELS[record.level] ?? `L${record.level}`) : String(record.level ?? '-')).padEnd(5);
  const head = [time, level];
  if (record.component !== undefined) head.push(`[${value(record.component)}]`);
  const msg = typeof record.msg === 'string' ? record.msg : record.msg === undefined ? '' : value(record.msg);
  if (msg !== '') head.push(CONTROL.test(msg) ? JSON.stringify(msg).slice(1, -1) : msg);
  const fields = Object.entries(record)
    .filter(([key]) => !HEAD.has(key))
    .map(([key, raw]) => `${WORD.test(key) ? key : JSON.stringify(key)}=${value(raw)}`);
  return [...head, ...fields].join(' ');
}

/** A pino destination that writes each record to `out` as one text line. */
export function textDestination(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(chunk: string): void {
      const lines = chunk.split('\n').filter((line) => line !== '');
      for (const line of lines) out.write(`${formatTextLine(line)}\n`);
    },
  };
}
