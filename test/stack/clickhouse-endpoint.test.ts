// The local ClickHouse endpoint (chdb behind HTTP) must behave like ClickHouse's HTTP
// interface on every path the product relies on: compressed binary inserts, dedup
// tokens, error shapes, auth, persistence.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePort, startClickHouse } from '../../stack/index.ts';
import type { ServiceHandle } from '../../stack/index.ts';

const USER = 'tester';
const PASSWORD = 's3cret';

type Handle = ServiceHandle & { url: string };

/** Native format: varint counts, then per column its name, type, and values. */
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}
const str = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([varint(b.length), b]);
};
function nativeBlock(rows: Array<{ id: bigint; name: string }>): Buffer {
  const ids = Buffer.alloc(8 * rows.length);
  rows.forEach((r, i) => ids.writeBigUInt64LE(r.id, 8 * i));
  return Buffer.concat([
    varint(2), varint(rows.length),
    str('id'), str('UInt64'), ids,
    str('name'), str('String'), ...rows.map((r) => str(r.name)),
  ]);
}

describe('clickhouse endpoint', () => {
  let dir: string;
  let port: number;
  let ch: Handle;

  const query = (sql: string, init: RequestInit & { params?: Record<string, string> } = {}): Promise<Response> => {
    const url = new URL(ch.url);
    url.searchParams.set('query', sql);
    for (const [k, v] of Object.entries(init.params ?? {})) url.searchParams.set(k, v);
    return fetch(url, {
      method: 'POST',
      ...init,
      headers: { 'X-ClickHouse-User': USER, 'X-ClickHouse-Key': PASSWORD, ...init.headers },
    });
  };
  const text = async (sql: string): Promise<string> => {
    const res = await query(sql);
    const body = await res.text();
    expect(res.status, body).toBe(200);
    return body;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stack-ch-'));
    port = await freePort();
    ch = await startClickHouse({ dir, port, user: USER, password: PASSWORD });
    await text(
      'CREATE TABLE t (id UInt64, name String) ENGINE = MergeTree ORDER BY id ' +
        'SETTINGS non_replicated_deduplication_window = 1000',
    );
  }, 60_000);

  afterAll(async () => {
    await ch?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('answers ping', async () => {
    const res = await fetch(`${ch.url}/ping`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Ok.\n');
  });

  it('returns TabSeparated by default', async () => {
    expect(await text("SELECT 1, 'a\tb', toUInt64('18446744073709551615')")).toBe('1\ta\\tb\t18446744073709551615\n');
  });

  it('inserts a Native body compressed with br, zstd and gzip, with exact values', async () => {
    const rows = [
      { id: 18446744073709551615n, name: 'max' },
      { id: 0n, name: '' },
      { id: 42n, name: 'héllo ✓ 🦀' },
    ];
    const block = nativeBlock(rows);
    const bodies: Array<[string, Buffer]> = [
      ['br', zlib.brotliCompressSync(block)],
      ['zstd', zlib.zstdCompressSync(block)],
      ['gzip', zlib.gzipSync(block)],
    ];
    for (const [encoding, body] of bodies) {
      await text('TRUNCATE TABLE t');
      const res = await query('INSERT INTO t FORMAT Native', {
        body, headers: { 'Content-Encoding': encoding }, params: { async_insert: '0' },
      });
      expect(res.status, `${encoding}: ${await res.text()}`).toBe(200);
      expect(await text('SELECT id, name FROM t ORDER BY id FORMAT JSONEachRow SETTINGS output_format_json_quote_64bit_integers=1'))
        .toBe([
          '{"id":"0","name":""}',
          '{"id":"42","name":"héllo ✓ 🦀"}',
          '{"id":"18446744073709551615","name":"max"}',
          '',
        ].join('\n'));
    }
  });

  it('deduplicates a retried insert carrying the same insert_deduplication_token', async () => {
    await text('TRUNCATE TABLE t');
    const body = zlib.zstdCompressSync(nativeBlock([{ id: 1n, name: 'a' }, { id: 2n, name: 'b' }]));
    const params = { async_insert: '0', insert_deduplication_token: 'batch-0001' };
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await query('INSERT INTO t FORMAT Native', { body, headers: { 'Content-Encoding': 'zstd' }, params });
      expect(res.status, await res.text()).toBe(200);
    }
    expect(await text('SELECT count() FROM t')).toBe('2\n');
    // A different token is a different batch.
    await query('INSERT INTO t FORMAT Native', {
      body, headers: { 'Content-Encoding': 'zstd' }, params: { ...params, insert_deduplication_token: 'batch-0002' },
    });
    expect(await text('SELECT count() FROM t')).toBe('4\n');
  });

  it('applies URL settings to one query only', async () => {
    const res = await query("SELECT getSetting('max_threads')", { params: { max_threads: '1' } });
    expect(await res.text()).toBe('1\n');
    expect(await text("SELECT getSetting('max_threads') = 1")).toBe('0\n');
  });

  it('rejects wrong credentials as ClickHouse does (403, code 516)', async () => {
    const res = await query('SELECT 1', { headers: { 'X-ClickHouse-Key': 'wrong' } });
    expect(res.status).toBe(403);
    expect(res.headers.get('x-clickhouse-exception-code')).toBe('516');
    expect(await res.text()).toMatch(/^Code: 516\. DB::Exception: tester: Authentication failed: .*\(AUTHENTICATION_FAILED\)\n$/);
    // The other credential transports are checked too.
    const basic = await fetch(`${ch.url}/?query=SELECT+1`, {
      headers: { Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` },
    });
    expect(await basic.text()).toBe('1\n');
    const params = await fetch(`${ch.url}/?query=SELECT+1&user=${USER}&password=nope`);
    expect(params.status).toBe(403);
  });

  it('reports query errors with ClickHouse status, header and body', async () => {
    const failing = await query("SELECT throwIf(1, 'boom')");
    expect(failing.status).toBe(500);
    expect(failing.headers.get('x-clickhouse-exception-code')).toBe('395');
    expect(await failing.text()).toMatch(/^Code: 395\. DB::Exception: boom/);

    const syntax = await query('SELEC 1');
    expect(syntax.status).toBe(400); // SYNTAX_ERROR → 400 in exceptionCodeToHTTPStatus
    expect(syntax.headers.get('x-clickhouse-exception-code')).toBe('62');
    expect(await syntax.text()).toMatch(/^Code: 62\. DB::Exception: Syntax error/);

    const unknown = await query('SELECT * FROM no_such_table');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-clickhouse-exception-code')).toBe('60');
  });

  it('keeps data across a stop and start on the same dir', async () => {
    await text('TRUNCATE TABLE t');
    const res = await query('INSERT INTO t FORMAT JSONEachRow', { body: '{"id":7,"name":"kept"}\n' });
    expect(res.status, await res.text()).toBe(200);
    await ch.stop();
    await ch.stop(); // idempotent
    ch = await startClickHouse({ dir, port, user: USER, password: PASSWORD });
    expect(await text('SELECT id, name FROM t')).toBe('7\tkept\n');
  }, 60_000);
});
