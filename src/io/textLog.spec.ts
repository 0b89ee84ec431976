import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type LogFormat } from './logger.ts';
import { formatTextLine } from './textLog.ts';

const T = 1_796_171_315_990; // 2026-12-02T00:28:35.990Z

describe('formatTextLine: one pino record, one readable line', () => {
  it.each([
    ['level, component, message, fields in order', { level: 40, time: T, app: 'anonymizer', component: 'spool', reason: 'foreign_name', file: 'junk.batch', msg: 'a file failed its check' },
      '2026-12-02T00:28:35.990Z WARN  [spool] a file failed its check reason=foreign_name file=junk.batch'],
    ['no component', { level: 30, time: T, app: 'anonymizer', msg: 'starting', drain: true, intervalMs: 1000 },
      '2026-12-02T00:28:35.990Z INFO  starting drain=true intervalMs=1000'],
    ['values that are not plain words are JSON', { level: 50, time: T, msg: 'x', err: 'connect ECONNREFUSED 127.0.0.1:1', spooled: { batches: 0, bytes: 0 }, lag: [1, 2], none: null, empty: '' },
      '2026-12-02T00:28:35.990Z ERROR x err="connect ECONNREFUSED 127.0.0.1:1" spooled={"batches":0,"bytes":0} lag=[1,2] none=null empty=""'],
    ['a multi-line stack stays on one line', { level: 40, time: T, msg: 'Connection error', stack: 'Error: boom\n    at f (a.js:1:1)' },
      '2026-12-02T00:28:35.990Z WARN  Connection error stack="Error: boom\\n    at f (a.js:1:1)"'],
    ['a field cannot forge another field or line', { level: 30, time: T, msg: 'line one\nFATAL forged', file: 'a b=c' },
      '2026-12-02T00:28:35.990Z INFO  line one\\nFATAL forged file="a b=c"'],
    ['every level name', { level: 60, time: T, msg: 'm' }, '2026-12-02T00:28:35.990Z FATAL m'],
    ['trace', { level: 10, time: T, msg: 'm' }, '2026-12-02T00:28:35.990Z TRACE m'],
  ])('%s', (_name, record, line) => {
    expect(formatTextLine(JSON.stringify(record))).toBe(line);
  });

  it('passes through a line that is not a JSON object', () => {
    expect(formatTextLine('not json')).toBe('not json');
    expect(formatTextLine('[1,2]')).toBe('[1,2]');
  });
});

/** The lines a logger of `format` writes for the same events. */
function emit(format: LogFormat): string[] {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const logger = createLogger('info', out, format);
  const child = logger.child({ component: 'clickhouse' });
  child.info({ password: 'pw-s3cret-1', headers: { 'x-clickhouse-key': 'key-s3cret-2' }, rows: 10 }, 'insert');
  child.warn({ remoteAddr: '203.0.113.77', rawRemoteAddr: '203.0.113.78', key: 'key-s3cret-3' }, 'address');
  logger.error({ err: 'boom', nested: { password: 'pw-s3cret-4' } }, 'fatal error: stopping');
  logger.debug('below the level');
  out.end();
  return text.split('\n').filter(Boolean);
}

describe('createLogger: LOG_FORMAT', () => {
  const SECRETS = ['pw-s3cret-1', 'key-s3cret-2', 'key-s3cret-3', 'pw-s3cret-4', '203.0.113.77', '203.0.113.78'];

  it('json: one JSON object a line, with level, time and msg', () => {
    const lines = emit('json');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String), app: 'anonymizer' });
  });

  it('text: the same events, one readable line each, none of them JSON', () => {
    const json = emit('json').map((line) => JSON.parse(line) as { level: number; msg: string });
    const text = emit('text');
    expect(text).toHaveLength(json.length);
    for (const [i, line] of text.entries()) {
      expect(() => JSON.parse(line)).toThrow();
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /);
      expect(line).toContain(` ${json[i]!.msg}`);
    }
    expect(text[0]).toMatch(/ INFO  \[clickhouse\] insert /);
    expect(text[0]).toMatch(/ rows=10$/);
  });

  it.each(['json', 'text'] as const)('%s: prints no credential and no raw address', (format) => {
    const output = emit(format).join('\n');
    for (const secret of SECRETS) expect(output).not.toContain(secret);
    expect(output.split('[redacted]').length - 1).toBe(SECRETS.length);
  });
});
