/** Shared fixtures for the operator marble specs. */
import { expect } from 'vitest';
import { TestScheduler } from 'rxjs/testing';
import type { SealedBatch } from '../domain/batch.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';

export function newTestScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

export function row(url: string, remoteAddr = '1.2.3.X'): HttpLogRow {
  return { timestamp: 1_700_000_000, resourceId: 1n, bytesSent: 2n, requestTimeMilli: 3n, responseStatus: 200, cacheStatus: 'HIT', method: 'GET', remoteAddr, url };
}

export function sealed(token: string, rowCount = 1, offsets: Array<[number, number]> = []): SealedBatch {
  return { token, body: new Uint8Array(rowCount), format: 'Native', codec: 'none', rowCount, uncompressedBytes: rowCount, offsets: new Map(offsets) };
}
