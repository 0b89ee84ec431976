import { describe, expect, it } from 'vitest';
import { compress, CODECS, DEFAULT_LEVEL } from '../encode/compress.ts';
import { encodeInsertBody } from '../encode/insertBody.ts';
import { InvalidTextError } from '../errors.ts';
import { SplitMix64 } from '../synthetic/uniformDataset.ts';
import type { DecodedRecord, HttpLogRow } from './httpLogRow.ts';
import { MAX_TEXT_LENGTH, singleRowBodyBound, validateRecord } from './validateRecord.ts';

const base: DecodedRecord = { timestamp: 1_764_000_000, resourceId: 1n, bytesSent: 2n, requestTimeMilli: 3n, responseStatus: 200, cacheStatus: 'HIT', method: 'GET', rawRemoteAddr: '10.77.1.2', url: '/a/b.js?x=1' };

/** [what, fields changed, the field refused or undefined when the record is valid]. */
const table: Array<[string, Partial<DecodedRecord>, string | undefined]> = [
  ['a plain record', {}, undefined],
  ['every IANA-style method and cache status', { method: 'VERSION-CONTROL', cacheStatus: 'REVALIDATED' }, undefined],
  ['empty texts', { method: '', cacheStatus: '', url: '', rawRemoteAddr: '' }, undefined],
  ['nginx "-" for no cache status', { cacheStatus: '-' }, undefined],
  ['non-ASCII URL', { url: '/ünïcødé/路径/😀?q=é' }, undefined],
  ['the longest URL allowed', { url: '/'.padEnd(MAX_TEXT_LENGTH.url, 'a') }, undefined],
  ['a URL one over the limit', { url: '/'.padEnd(MAX_TEXT_LENGTH.url + 1, 'a') }, 'url'],
  ['NUL in the URL', { url: '/a\u0000b' }, 'url'],
  ['a tab in the URL', { url: '/a\tb' }, 'url'],
  ['DEL in the URL', { url: '/a\u007fb' }, 'url'],
  ['a C1 control in the URL', { url: '/a\u0085b' }, 'url'],
  ['an IPv4 address as method', { method: '10.77.1.2' }, 'method'],
  ['an IPv6 address as cache status', { cacheStatus: 'fe80::1' }, 'cache_status'],
  ['digits in a method', { method: 'GET2' }, 'method'],
  ['a space in a method', { method: 'GE T' }, 'method'],
  ['a method over 32 characters', { method: 'A'.repeat(33) }, 'method'],
  ['a cache status of 32 characters', { cacheStatus: 'A'.repeat(32) }, undefined],
  ['NUL in the address', { rawRemoteAddr: '10.77.1.2\u0000' }, 'remote_addr'],
  ['an address over 64 characters', { rawRemoteAddr: '1'.repeat(65) }, 'remote_addr'],
  ['garbage (non-control) in the address: anonymized to X later, not refused', { rawRemoteAddr: 'not an address' }, undefined],
];

describe('validateRecord', () => {
  it.each(table)('%s', (_what, fields, refused) => {
    let error: unknown;
    try {
      validateRecord({ ...base, ...fields });
    } catch (caught) {
      error = caught;
    }
    if (refused === undefined) {
      expect(error).toBeUndefined();
    } else {
      expect(error).toBeInstanceOf(InvalidTextError);
      expect((error as InvalidTextError).field).toBe(refused);
      expect((error as InvalidTextError).code).toBe('invalid_text');
    }
  });
});

describe('singleRowBodyBound', () => {
  const empty: HttpLogRow = { timestamp: 0xffff_ffff, resourceId: 2n ** 64n - 1n, bytesSent: 2n ** 64n - 1n, requestTimeMilli: 2n ** 64n - 1n, responseStatus: 0xffff, cacheStatus: '', method: '', remoteAddr: '', url: '' };
  const emptyBytes = encodeInsertBody([empty]).byteLength;

  it('is never below the real compressed body of the row alone, for every codec, incompressible text included', async () => {
    const random = new SplitMix64(5n);
    const text = (length: number, wide: boolean): string =>
      Array.from({ length }, () => String.fromCharCode(wide ? 0x100 + random.below(0xd000) : 0x21 + random.below(94))).join('');
    const rows: HttpLogRow[] = [];
    for (const length of [0, 1, 100, 5_000, 70_000]) {
      for (const wide of [false, true]) {
        rows.push({ ...empty, timestamp: random.below(2 ** 31), url: text(length, wide), method: 'GET', cacheStatus: 'MISS', remoteAddr: random.below(2) === 0 ? '10.77.1.X' : '2001:db8:77::X' });
      }
    }
    for (const row of rows) {
      const raw = encodeInsertBody([row]);
      for (const codec of CODECS) {
        const body = await compress(codec, codec === 'br' ? 5 : DEFAULT_LEVEL[codec], raw);
        expect(singleRowBodyBound(row, emptyBytes), `${codec}, url of ${row.url.length}`).toBeGreaterThanOrEqual(body.byteLength);
      }
    }
  });

  it('lets an ordinary row pass a small limit without measuring', () => {
    expect(singleRowBodyBound({ ...empty, url: '/a/b/c.js?v=1', method: 'GET', cacheStatus: 'HIT', remoteAddr: '1.2.3.X' }, emptyBytes)).toBeLessThan(1_024);
  });
});
