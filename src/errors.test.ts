import { describe, expect, it } from 'vitest';
import { toHttpError } from './io/clickhouseHttp.ts';
import { AnonymizerError, BodyTooLargeError, ClickHouseError, ConfigError, DecodeError, NetworkError, POLICY_BY_CLICKHOUSE_CODE, ProxyRateLimitedError, classifyInsertFailure, insertFailurePolicy, policyForAnswer } from './errors.ts';

describe('the failure policy: every answer → its action', () => {
  // [what, error, action, usedSlot, reason]
  type Row = [string, unknown, string, boolean, string?];
  const ch = (status: number, code?: number, text = '') => toHttpError(status, code === undefined ? undefined : String(code), code === undefined ? text : `Code: ${code}. DB::Exception: ${text}`);
  const cases: Row[] = [
    ['a 503 from the proxy (no code)', ch(503, undefined, '<html>503 Service Temporarily Unavailable</html>'), 'retry', false],
    ['a refused connection', new NetworkError('refused', true), 'retry', false],
    ['a reset or a timeout', new NetworkError('reset', false), 'retry', true],
    ['TLS refused the certificate (untrusted, wrong host, failed handshake)', new NetworkError('untrusted', true, { tls: true }), 'blocked', true, 'tls'],
    ['a 502 from the proxy (ClickHouse down)', ch(502, undefined, '<html>502 Bad Gateway</html>'), 'retry', true],
    ['a 500 without a code', ch(500), 'retry', true],
    ['a 503 with a ClickHouse code it does not list', ch(503, 999), 'retry', true],
    ['a 500 with an unlisted code', ch(500, 1001), 'retry', true],
    ['408', ch(408), 'retry', true],
    ['429', ch(429), 'retry', true],
    ...[159, 201, 202, 209, 210, 241, 319, 394].map((code): Row => [`Code: ${code} (passing server trouble)`, ch(500, code), 'retry', true]),
    ['Code: 252, too many parts in a partition (merges behind)', ch(500, 252, 'Too many parts (3001 with average size of 1.00 KiB) in table. Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)'), 'retry', true],
    ['a 413 from the proxy', ch(413, undefined, '<html>413 Request Entity Too Large</html>'), 'split', false],
    ['a 413 as BodyTooLargeError', new BodyTooLargeError(), 'split', false],
    ['a 413 with a code (229 QUERY_IS_TOO_LARGE)', new ClickHouseError('Code: 229', 413, 229), 'split', false],
    ...[6, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 128, 432, 441, 469].map((code): Row => [`Code: ${code} (this batch's data)`, ch(400, code), 'quarantine', true]),
    ['Code: 27 with a 500', ch(500, 27), 'quarantine', true],
    ['Code: 252, too many partitions for one INSERT block', ch(500, 252, "Too many partitions for single INSERT block (more than 100). The limit is controlled by 'max_partitions_per_insert_block' setting. (TOO_MANY_PARTS)"), 'quarantine', true],
    ...[192, 193, 194, 195, 516].map((code): Row => [`Code: ${code} (credentials)`, ch(403, code), 'blocked', true, 'authentication']),
    ['a 401 without a code', ch(401), 'blocked', true, 'authentication'],
    ['a 403 without a code', ch(403), 'blocked', true, 'access_denied'],
    ['Code: 497 ACCESS_DENIED', ch(403, 497), 'blocked', true, 'access_denied'],
    ['Code: 291 DATABASE_ACCESS_DENIED', ch(403, 291), 'blocked', true, 'access_denied'],
    ['Code: 164 READONLY', ch(500, 164), 'blocked', true, 'readonly'],
    ['Code: 242 TABLE_IS_READ_ONLY', ch(500, 242), 'blocked', true, 'readonly'],
    ['Code: 81 UNKNOWN_DATABASE', ch(404, 81), 'blocked', true, 'unknown_database'],
    ['Code: 60 UNKNOWN_TABLE', ch(404, 60), 'blocked', true, 'unknown_table'],
    ...[8, 10, 16, 47].map((code): Row => [`Code: ${code} (the table's shape)`, ch(400, code), 'blocked', true, 'schema_mismatch']),
    ['Code: 115 UNKNOWN_SETTING', ch(400, 115), 'blocked', true, 'setting_refused'],
    ['Code: 452 SETTING_CONSTRAINT_VIOLATION', ch(400, 452), 'blocked', true, 'setting_refused'],
    ['an unknown 4xx without a code (418)', ch(418), 'blocked', true, 'http_418'],
    ['a 404 without a code (a wrong path)', ch(404, undefined, 'There is no handle /x'), 'blocked', true, 'http_404'],
    ['an unlisted code with a 4xx (62 SYNTAX_ERROR)', ch(400, 62), 'blocked', true, 'http_400'],
    ['a redirect (a wrong URL)', ch(301), 'blocked', true, 'http_301'],
    ['a non-retriable error of ours (not an answer)', new DecodeError('bad'), 'fatal', true],
    ['bad configuration', new ConfigError('X', 'X must be'), 'fatal', true],
    ['an unknown error', new TypeError('boom'), 'fatal', true],
  ];
  it.each(cases)('%s → %s', (_name, error, action, usedSlot, reason) => {
    const policy = insertFailurePolicy(error);
    expect({ action: policy.action, usedSlot: policy.usedSlot, reason: policy.reason }).toEqual({ action, usedSlot, reason });
    expect(classifyInsertFailure(error)).toBe(action);
  });

  it('the retriable flag follows from the policy: resent (retry, blocked) or not (split, quarantine)', () => {
    for (const [, error, action] of cases) {
      if (!(error instanceof AnonymizerError) || action === 'fatal') continue;
      expect([action, error.retriable]).toEqual([action, action === 'retry' || action === 'blocked']);
    }
  });

  it('every listed ClickHouse code has one action, whatever the status (except 413)', () => {
    for (const [code, rule] of POLICY_BY_CLICKHOUSE_CODE) {
      const actions = [400, 403, 404, 500, 502].map((status) => policyForAnswer({ status, code, message: '' }).action);
      expect(new Set(actions).size, `code ${code}`).toBe(1);
      if (!('when' in rule)) expect(actions[0]).toBe(rule.action);
    }
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
    expect([error.code, error.retriable, error.stage, error.name]).toEqual(['ANON_CLICKHOUSE_27', false, 'sending', 'ClickHouseError']);
  });
});
