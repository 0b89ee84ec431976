import { describe, expect, it } from 'vitest';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { encodeInsertBody, sortForCompression } from './insertBody.ts';
import { decodeNative } from './nativeFormat.ts';

const row = (cacheStatus: string, responseStatus: number, method: string, timestamp: number, url: string): HttpLogRow => ({
  timestamp, resourceId: 1n, bytesSent: 2n, requestTimeMilli: 3n, responseStatus, cacheStatus, method, remoteAddr: '1.2.3.X', url,
});

describe('the insert body', () => {
  const rows = [row('MISS', 200, 'GET', 5, '/a'), row('HIT', 404, 'GET', 1, '/b'), row('HIT', 200, 'HEAD', 2, '/c'), row('HIT', 200, 'GET', 9, '/d'), row('HIT', 200, 'GET', 3, '/e')];

  it('sorts by cache status, status, method, then time', () => {
    expect(sortForCompression(rows).map((r) => r.url)).toEqual(['/e', '/d', '/c', '/b', '/a']);
  });

  it('holds exactly the same rows, only reordered, and leaves the input as it was', () => {
    const before = rows.map((r) => r.url);
    const decoded = decodeNative(encodeInsertBody(rows));
    expect(rows.map((r) => r.url)).toEqual(before);
    const key = (r: HttpLogRow) => JSON.stringify({ ...r, resourceId: String(r.resourceId), bytesSent: String(r.bytesSent), requestTimeMilli: String(r.requestTimeMilli) });
    expect(decoded.map(key).sort()).toEqual(rows.map(key).sort());
  });
});
