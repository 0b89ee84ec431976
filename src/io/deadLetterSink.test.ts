import { describe, expect, it } from 'vitest';
import type { RejectedMessage } from '../domain/batch.ts';
import { DecodeError } from '../errors.ts';
import { BROKER_DEFAULT_MAX_MESSAGE_BYTES, deadLetterRecord, planDeadLetters, recordBytes, TOO_LARGE_FOR_DLQ } from './deadLetterSink.ts';

const AT = '2026-12-01T00:00:00.000Z';
const options = { sourceTopic: 'http_log', maxMessageBytes: BROKER_DEFAULT_MAX_MESSAGE_BYTES, at: AT };

function rejectedOf(count: number, valueBytes: number, firstOffset = 0): RejectedMessage[] {
  return Array.from({ length: count }, (_, i) => ({
    message: { partition: i % 3, offset: firstOffset + i, key: null, value: new Uint8Array(valueBytes).fill(i % 251) },
    error: new DecodeError('not a valid Cap\'n Proto HttpLogRecord'),
  }));
}

const headerOf = (record: ReturnType<typeof deadLetterRecord>, name: string): string | undefined => {
  const value = record.headers?.[name];
  return value === undefined ? undefined : String(value);
};

describe('planDeadLetters: produce calls under the topic limit, whatever the burst', () => {
  const cases: Array<[string, number, number, number]> = [
    // name, messages, value bytes, topic max.message.bytes
    ['the burst that crashed the producer (6,000 × 200 B, default limit)', 6_000, 200, BROKER_DEFAULT_MAX_MESSAGE_BYTES],
    ['one small message', 1, 16, BROKER_DEFAULT_MAX_MESSAGE_BYTES],
    ['many messages against a small topic limit', 2_000, 1_000, 64 * 1024],
    ['messages each a third of the limit', 10, 300_000, BROKER_DEFAULT_MAX_MESSAGE_BYTES],
  ];
  it.each(cases)('%s', (_name, count, valueBytes, maxMessageBytes) => {
    const rejected = rejectedOf(count, valueBytes);
    const calls = planDeadLetters(rejected, { ...options, maxMessageBytes });
    // Every message is there once, in order, with its original bytes.
    const flat = calls.flat();
    expect(flat.map((record) => Number(headerOf(record, 'x-dlq-source-offset')))).toEqual(rejected.map((r) => r.message.offset));
    for (const [i, record] of flat.entries()) expect(Buffer.compare(record.value as Buffer, Buffer.from(rejected[i]!.message.value!))).toBe(0);
    // No call is over the limit, and calls are not needlessly small.
    for (const call of calls) expect(call.reduce((sum, record) => sum + recordBytes(record), 0)).toBeLessThan(maxMessageBytes);
    const total = flat.reduce((sum, record) => sum + recordBytes(record), 0);
    expect(calls.length).toBeLessThanOrEqual(Math.ceil(total / (maxMessageBytes - 1_024 - (valueBytes + 400))) + 1);
  });

  it('a single message over the limit becomes a small stand-in that names where the original is', () => {
    const [huge] = rejectedOf(1, 2 * 1024 * 1024, 41);
    const record = deadLetterRecord(huge!, options);
    expect(record.value).toBeNull();
    expect(headerOf(record, 'x-dlq-reason')).toBe(TOO_LARGE_FOR_DLQ);
    expect(headerOf(record, 'x-dlq-original-reason')).toBe('ANON_DECODE');
    expect(headerOf(record, 'x-dlq-source-partition')).toBe('0');
    expect(headerOf(record, 'x-dlq-source-offset')).toBe('41');
    expect(Number(headerOf(record, 'x-dlq-original-bytes'))).toBeGreaterThan(2 * 1024 * 1024);
    expect(recordBytes(record)).toBeLessThan(2_048);
  });

  it('a message just under the limit is kept whole, just over it is replaced', () => {
    const limit = 64 * 1024;
    const probe = deadLetterRecord(rejectedOf(1, 0)[0]!, { ...options, maxMessageBytes: limit });
    const room = limit - 1_024 - recordBytes(probe);
    const fits = deadLetterRecord(rejectedOf(1, room)[0]!, { ...options, maxMessageBytes: limit });
    const over = deadLetterRecord(rejectedOf(1, room + 1)[0]!, { ...options, maxMessageBytes: limit });
    expect(headerOf(fits, 'x-dlq-reason')).toBe('ANON_DECODE');
    expect(headerOf(over, 'x-dlq-reason')).toBe(TOO_LARGE_FOR_DLQ);
  });

  it('a long error message is cut in the header', () => {
    const [one] = rejectedOf(1, 10);
    const record = deadLetterRecord({ ...one!, error: new DecodeError('x'.repeat(50_000)) }, options);
    expect(headerOf(record, 'x-dlq-error')!.length).toBe(1_000);
  });
});
