/**
 * Every operator routes an exception thrown by one of its callbacks to `subscriber.error`,
 * so it reaches the pipeline's own error path (stop fetching, keep what is durable, exit
 * with a code) and never RxJS's unhandled-error path, which crashes the process. A table:
 * one row per operator and callback, each thrown synchronously.
 */
import { config as rxjsConfig, of, type Observable } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DecodedChunk, OffsetChunk, RowBatch, SourceMessage } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
import { ProxySlots } from '../pacing/proxySlots.ts';
import { DecodeError } from '../errors.ts';
import { acknowledgeBatches } from './acknowledgeBatches.ts';
import { anonymizeAddresses } from './anonymizeAddresses.ts';
import { awaitEach } from './awaitEach.ts';
import { commitOffsets } from './commitOffsets.ts';
import { deadLetter } from './deadLetter.ts';
import { decodeRecords } from './decodeRecords.ts';
import { encodeBatches } from './encodeBatches.ts';
import { pacedInsert, type InsertOutcome } from './pacedInsert.ts';
import { persistBatches } from './persistBatches.ts';
import { publishBatches } from './publishBatches.ts';
import { rejectOversizedRows } from './rejectOversizedRows.ts';
import { sealBatches } from './sealBatches.ts';
import { splitOversized } from './splitOversized.ts';
import { row, sealed } from './testing.ts';

const boom = new Error('a callback threw');
const thrower = (): never => {
  throw boom;
};

const record: DecodedRecord = { timestamp: 1_700_000_000, resourceId: 1n, bytesSent: 2n, requestTimeMilli: 3n, responseStatus: 200, cacheStatus: 'HIT', method: 'GET', rawRemoteAddr: 'not an address', url: '/' };
const decodedChunk: DecodedChunk<DecodedRecord> = { partition: 0, items: [record], itemOffsets: [0], lastOffset: 1, rejected: [{ message: { partition: 0, offset: 1, value: new Uint8Array(1) }, error: new DecodeError('bad') }] };
const rowChunk: OffsetChunk<ReturnType<typeof row>> = { partition: 0, items: [row('/a'), row('/b')], itemOffsets: [0, 1], lastOffset: 1 };
const oversizeChunk = { ...rowChunk, rejected: [], sources: rowChunk.items.map((_, i) => ({ partition: 0, offset: i, value: new Uint8Array(1) })) };
const rowBatch: RowBatch = { rows: [row('/a'), row('/b')], offsets: new Map([[0, 1]]), reason: 'size' };
const stored: InsertOutcome<ReturnType<typeof sealed>> = { batch: sealed('t'), kind: 'stored' };
const committed = { ...sealed('t', 1, [[0, 1]]), committed: true };

const oversized = { token: 't', rows: [row('/a'), row('/b'), row('/c')], bodyBytes: 20 };
const splitConfig = { encode: (rows: readonly unknown[]) => new Uint8Array(rows.length * 3), format: 'Native' as const, compress: async (body: Uint8Array) => body, codec: 'none' as const };

/** A write the disk refuses every time, and one it refuses once. */
const diskFull = async (): Promise<never> => Promise.reject(new Error('disk full'));
const failsOnce = () => {
  let calls = 0;
  return async (): Promise<string> => (calls++ === 0 ? Promise.reject(new Error('disk full')) : 'stored');
};
const messageChunk: OffsetChunk<SourceMessage> = { partition: 0, items: [{ partition: 0, offset: 0, value: new Uint8Array(1) }], lastOffset: 0 };

type Case = [string, () => Observable<unknown>];
const encodeConfig = { encode: () => new Uint8Array(10), format: 'Native' as const, compress: async (body: Uint8Array) => body, codec: 'none' as const, maxBodyBytes: 100 };
const cases: Case[] = [
  ['sealBatches: sizeOf', () => of(rowChunk).pipe(sealBatches({ proxyReady$: of(), sizeOf: thrower }))],
  ['sealBatches: fit.measure', () => of(rowChunk).pipe(sealBatches({ proxyReady$: of(), sizeOf: () => 1_000, fit: { limit: 100, measure: thrower } }))],
  [
    'sealBatches: fit.onMeasured',
    () => of(rowChunk).pipe(sealBatches({ proxyReady$: of(), sizeOf: () => 1_000, fit: { limit: 100, measure: async () => ({ body: new Uint8Array(50), uncompressedBytes: 50 }), onMeasured: thrower } })),
  ],
  ['encodeBatches: encode', () => of(rowBatch).pipe(encodeBatches({ ...encodeConfig, encode: thrower }))],
  ['encodeBatches: compress', () => of(rowBatch).pipe(encodeBatches({ ...encodeConfig, compress: thrower }))],
  ['encodeBatches: onEncoded', () => of(rowBatch).pipe(encodeBatches({ ...encodeConfig, onEncoded: thrower }))],
  ['encodeBatches: onOversize', () => of(rowBatch).pipe(encodeBatches({ ...encodeConfig, maxBodyBytes: 5, onOversize: thrower }))],
  ['anonymizeAddresses: onInvalidAddress', () => of({ partition: 0, items: [record], lastOffset: 0 }).pipe(anonymizeAddresses({ onInvalidAddress: thrower }))],
  ['anonymizeAddresses: onUrlAddress', () => of({ partition: 0, items: [{ ...record, url: '/x?ip=10.77.1.2' }], lastOffset: 0 }).pipe(anonymizeAddresses({ onUrlAddress: thrower }))],
  ['rejectOversizedRows: bound', () => of(oversizeChunk).pipe(rejectOversizedRows({ limit: 100, bound: thrower, measure: async () => 1 }))],
  ['rejectOversizedRows: measure', () => of(oversizeChunk).pipe(rejectOversizedRows({ limit: 100, bound: () => 1_000, measure: thrower }))],
  ['deadLetter: send', () => of(decodedChunk).pipe(deadLetter({ send: thrower }))],
  ['persistBatches: write', () => of(sealed('t')).pipe(persistBatches({ write: thrower }))],
  ['commitOffsets: commit', () => of(sealed('t', 1, [[0, 1]])).pipe(commitOffsets({ commit: thrower }))],
  ['publishBatches: publish', () => of(committed).pipe(publishBatches({ publish: thrower, discard: async () => {} }))],
  ['publishBatches: discard', () => of({ ...committed, committed: false }).pipe(publishBatches({ publish: async () => {}, discard: thrower }))],
  ['pacedInsert: send', () => of(sealed('t')).pipe(pacedInsert({ send: thrower, slots: new ProxySlots({ minIntervalMs: 10, marginMs: 0 }), classify: () => ({ action: 'fatal', usedSlot: true }) }))],
  ['pacedInsert: onAttempt', () => of(sealed('t')).pipe(pacedInsert({ send: async () => {}, slots: new ProxySlots({ minIntervalMs: 10, marginMs: 0 }), onAttempt: thrower }))],
  ['pacedInsert: onStored', () => of(sealed('t')).pipe(pacedInsert({ send: async () => {}, slots: new ProxySlots({ minIntervalMs: 10, marginMs: 0 }), onStored: thrower }))],
  ['pacedInsert: onFailure', () => of(sealed('t')).pipe(pacedInsert({ send: async () => Promise.reject(new Error('refused')), slots: new ProxySlots({ minIntervalMs: 10, marginMs: 0 }), onFailure: thrower }))],
  ['awaitEach: effect', () => of(1).pipe(awaitEach(thrower, (v) => v))],
  ['awaitEach: project', () => of(1).pipe(awaitEach(async () => 2, thrower))],
  ['splitOversized: encode', () => of(oversized).pipe(splitOversized({ ...splitConfig, encode: thrower }))],
  ['splitOversized: compress', () => of(oversized).pipe(splitOversized({ ...splitConfig, compress: thrower }))],
  ['splitOversized: onOversize', () => of({ ...oversized, bodyBytes: 8 }).pipe(splitOversized({ ...splitConfig, onOversize: thrower }))],
  ['acknowledgeBatches: stored', () => of(stored).pipe(acknowledgeBatches({ stored: thrower, split: async () => {}, quarantine: async () => {} }))],
  ['acknowledgeBatches: split', () => of({ ...stored, kind: 'split' as const }).pipe(acknowledgeBatches({ stored: async () => {}, split: thrower, quarantine: async () => {} }))],
  ['acknowledgeBatches: quarantine', () => of({ ...stored, kind: 'quarantine' as const }).pipe(acknowledgeBatches({ stored: async () => {}, split: async () => {}, quarantine: thrower }))],
  ['persistBatches: retry.when', () => of(sealed('t')).pipe(persistBatches({ write: diskFull, retry: { when: thrower, delayMs: 0 } }))],
  ['persistBatches: retry.onRetry', () => of(sealed('t')).pipe(persistBatches({ write: diskFull, retry: { when: () => true, delayMs: 0, onRetry: thrower } }))],
  ['persistBatches: retry.onRecovered', () => of(sealed('t')).pipe(persistBatches({ write: failsOnce(), retry: { when: () => true, delayMs: 0, onRecovered: thrower } }))],
  ['pacedInsert: classify', () => of(sealed('t')).pipe(pacedInsert({ send: async () => Promise.reject(new Error('refused')), slots: new ProxySlots({ minIntervalMs: 10, marginMs: 0 }), classify: thrower }))],
  ['anonymizeAddresses: anonymize', () => of({ partition: 0, items: [record], lastOffset: 0 }).pipe(anonymizeAddresses({ anonymize: thrower }))],
  ['encodeBatches: newToken', () => of(rowBatch).pipe(encodeBatches({ ...encodeConfig, newToken: thrower }))],
  ['sealBatches: maxBytes', () => of(rowChunk).pipe(sealBatches({ proxyReady$: of(), sizeOf: () => 1, maxBytes: thrower }))],
  ['decodeRecords: now', () => of(messageChunk).pipe(decodeRecords({ decode: () => record, sliceMs: 1, now: thrower }))],
];

/**
 * Operators with no callback that can fail the stream: deliveryState and remindWhileBlocked
 * take none. (decodeRecords is in the table for its clock, `now`; a throwing `decode` or
 * `validate` rejects the message by design, and decodeRecords.spec.ts tests that.)
 */
const CALLBACK_FREE = new Set(['testing.ts', 'deliveryState.ts', 'remindWhileBlocked.ts']);

describe('a callback that throws reaches subscriber.error', () => {
  let unhandled: ReturnType<typeof vi.fn<(error: unknown) => void>>;
  beforeEach(() => {
    unhandled = vi.fn<(error: unknown) => void>();
    rxjsConfig.onUnhandledError = unhandled;
  });
  afterEach(() => {
    rxjsConfig.onUnhandledError = null;
  });

  it.each(cases)('%s', async (_name, build) => {
    const seen = await new Promise<unknown>((resolve) => {
      build().subscribe({ error: resolve, complete: () => resolve('completed') });
    });
    expect(seen).toBe(boom);
    // RxJS reports unhandled errors on a timeout: give it one.
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(unhandled).not.toHaveBeenCalled();
  });

  it('the table covers every operator in src/operators', async () => {
    const { readdirSync } = await import('node:fs');
    const operators = readdirSync(new URL('.', import.meta.url))
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.spec.ts') && !CALLBACK_FREE.has(name))
      .map((name) => name.slice(0, -3));
    const covered = new Set(cases.map(([name]) => name.split(':')[0]));
    expect(operators.filter((name) => !covered.has(name))).toEqual([]);
  });
});
