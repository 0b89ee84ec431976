import { describe, expect, it } from 'vitest';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { decodeNative, encodeNative, nativeRowSize } from './nativeFormat.ts';

const rows: HttpLogRow[] = [
  { timestamp: 0xffff_ffff, resourceId: 2n ** 64n - 1n, bytesSent: 0n, requestTimeMilli: 2n ** 53n + 1n, responseStatus: 65535, cacheStatus: 'HIT', method: 'GET', remoteAddr: '1.2.3.X', url: '/é☃😀' },
  { timestamp: 0, resourceId: 0n, bytesSent: 1n, requestTimeMilli: 0n, responseStatus: 0, cacheStatus: '', method: '', remoteAddr: 'X', url: 'x'.repeat(300) },
];

describe('Native encoding', () => {
  it('round-trips every column exactly, including UInt64 extremes and unicode', () => {
    expect(decodeNative(encodeNative(rows))).toEqual(rows);
  });

  it('an empty block round-trips', () => {
    expect(decodeNative(encodeNative([]))).toEqual([]);
  });

  it('the per-row size estimate is exact for ASCII rows', () => {
    const ascii = [rows[1]!, { ...rows[1]!, url: '/a' }];
    const header = encodeNative([]).byteLength;
    expect(encodeNative(ascii).byteLength - header).toBe(ascii.reduce((sum, row) => sum + nativeRowSize(row), 0));
  });

  it('a truncated block is an error, not a short read', () => {
    const block = encodeNative(rows);
    expect(() => decodeNative(block.subarray(0, block.byteLength - 3))).toThrow(RangeError);
  });
});
