import { describe, expect, it } from 'vitest';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { decodeInsertBody, encodeInsertBody, INSERT_FORMAT, sortForCompression } from './insertBody.ts';
import { encodeNative } from './nativeFormat.ts';

const row = (cacheStatus: string, responseStatus: number, method: string, timestamp: number, url: string): HttpLogRow => ({
  timestamp, resourceId: 1n, bytesSent: 2n, requestTimeMilli: 3n, responseStatus, cacheStatus, method, remoteAddr: '1.2.3.X', url,
});

describe('the insert body', () => {
  const rows = [row('MISS', 200, 'GET', 5, '/b'), row('HIT', 404, 'GET', 1, '/a?x'), row('HIT', 200, 'HEAD', 2, '/c'), row('HIT', 200, 'GET', 9, '/a'), row('HIT', 200, 'GET', 3, '/a')];

  it('sorts by URL, then time', () => {
    expect(sortForCompression(rows).map((r) => `${r.url}@${r.timestamp}`)).toEqual(['/a@3', '/a@9', '/a?x@1', '/b@5', '/c@2']);
  });

  it('holds exactly the same rows, only reordered, and leaves the input as it was', () => {
    const before = rows.map((r) => r.url);
    const decoded = decodeInsertBody(encodeInsertBody(rows));
    expect(rows.map((r) => r.url)).toEqual(before);
    expect(decoded).toEqual(sortForCompression(rows));
  });

  it('is the compact format, and the decoder still reads plain Native bodies spooled before an upgrade', () => {
    expect(INSERT_FORMAT).toBe('CompactNative1');
    expect(decodeInsertBody(encodeNative(rows))).toEqual(rows);
  });
});
