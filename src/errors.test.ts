import { describe, expect, it } from 'vitest';
import { toHttpError } from './io/clickhouseHttp.ts';
import { BodyTooLargeError, ClickHouseError, ConfigError, DecodeError, NetworkError, ProxyRateLimitedError, classifyInsertFailure } from './errors.ts';

describe('classifyInsertFailure', () => {
  const cases: Array<[string, unknown, string]> = [
    ['a 503 from the proxy', new ProxyRateLimitedError(), 'retry'],
    ['a refused connection', new NetworkError('refused', true), 'retry'],
    ['a reset or a timeout', new NetworkError('reset', false), 'retry'],
    ['a 502 from the proxy (ClickHouse down)', new ClickHouseError('HTTP 502', 502, undefined, true), 'retry'],
    ['a 500 with a server-side code', new ClickHouseError('Code: 241', 500, 241, true), 'retry'],
    ['a 413 from the proxy', new BodyTooLargeError(), 'split'],
    ['a 413 seen as an HTTP error', new ClickHouseError('HTTP 413', 413, undefined, false), 'split'],
    ['Code: 27 (cannot parse input)', new ClickHouseError('Code: 27', 500, 27, true), 'quarantine'],
    ['Code: 53 (type mismatch)', new ClickHouseError('Code: 53', 400, 53, false), 'quarantine'],
    ['Code: 117 (incorrect data)', new ClickHouseError('Code: 117', 500, 117, true), 'quarantine'],
    ['Code: 469 (a CHECK constraint)', new ClickHouseError('Code: 469', 500, 469, true), 'quarantine'],
    ['Code: 60 (unknown table)', new ClickHouseError('Code: 60', 404, 60, false), 'fatal'],
    ['Code: 516 (authentication failed)', new ClickHouseError('Code: 516', 403, 516, false), 'fatal'],
    ['a 401 without a code', new ClickHouseError('HTTP 401', 401, undefined, false), 'fatal'],
    ['a non-retriable error of ours', new DecodeError('bad'), 'fatal'],
    ['bad configuration', new ConfigError('X', 'X must be'), 'fatal'],
    ['an unknown error', new TypeError('boom'), 'fatal'],
  ];
  it.each(cases)('%s → %s', (_name, error, action) => {
    expect(classifyInsertFailure(error)).toBe(action);
  });
});

describe('toHttpError (ClickHouse and proxy responses)', () => {
  it('a 503 without a ClickHouse code is the proxy rate limit', () => {
    expect(toHttpError(503, undefined, '<html>503 Service Temporarily Unavailable</html>')).toBeInstanceOf(ProxyRateLimitedError);
  });
  it('a 503 with a ClickHouse code is ClickHouse', () => {
    const error = toHttpError(503, '202', 'Code: 202. DB::Exception: Too many simultaneous queries');
    expect(error).toBeInstanceOf(ClickHouseError);
    expect((error as ClickHouseError).clickhouseCode).toBe(202);
  });
  it('a 413 is too large', () => {
    expect(toHttpError(413, undefined, '<html>413 Request Entity Too Large</html>')).toBeInstanceOf(BodyTooLargeError);
  });
  it('reads the code from the header, or else the body', () => {
    expect((toHttpError(500, '27', 'whatever') as ClickHouseError).clickhouseCode).toBe(27);
    expect((toHttpError(500, undefined, 'Code: 117. DB::Exception: Incorrect data') as ClickHouseError).clickhouseCode).toBe(117);
    expect((toHttpError(502, undefined, '<html>502 Bad Gateway</html>') as ClickHouseError).clickhouseCode).toBeUndefined();
  });
  it('errors carry a stable code, the retriable flag and the stage', () => {
    const error = toHttpError(500, '27', 'Code: 27. DB::Exception: Cannot parse input') as ClickHouseError;
    expect([error.code, error.retriable, error.stage, error.name]).toEqual(['ANON_CLICKHOUSE_27', true, 'sending', 'ClickHouseError']);
  });
});
