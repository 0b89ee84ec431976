// decodeRecord reads the common message layout straight off the bytes and leaves the rest to
// capnp-ts. These tests hold the two readings equal: on both synthetic datasets, on edge
// values (empty and non-ASCII text, max integers), and on thousands of corrupted messages,
// where each reading must give the same record or the same kind of error. Messages from the
// official `capnp` tool go through decodeRecord in test/capnp/inspect.test.ts.
import { describe, expect, it } from 'vitest';
import { DecodeError, InvalidTextError, TimestampRangeError } from '../errors.ts';
import { SplitMix64, uniformRecords } from '../synthetic/uniformDataset.ts';
import { realisticRecords } from '../synthetic/realisticDataset.ts';
import { decodeRecord, decodeWithCapnpTs } from './decodeRecord.ts';
import { encodeRecord, type SourceRecord } from './encodeRecord.ts';
import { pointTo, textPointers } from '../../test/support/hostileCorpus.ts';

type Outcome = { readonly record: unknown } | { readonly error: string };

function outcome(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): Outcome {
  try {
    return { record: decode(bytes) };
  } catch (error) {
    if (error instanceof TimestampRangeError) return { error: 'TimestampRangeError' };
    if (error instanceof InvalidTextError) return { error: 'InvalidTextError' };
    if (error instanceof DecodeError) return { error: 'DecodeError' };
    throw error;
  }
}

const expectSameReading = (bytes: Uint8Array): void => {
  expect(outcome(decodeRecord, bytes)).toEqual(outcome(decodeWithCapnpTs, bytes));
};

const base: SourceRecord = {
  timestampEpochMilli: 1_764_000_000_123n,
  resourceId: 42n,
  bytesSent: 1_000n,
  requestTimeMilli: 12n,
  responseStatus: 200,
  cacheStatus: 'HIT',
  method: 'GET',
  remoteAddr: '203.0.113.7',
  url: '/a/b.js',
};

describe('decodeRecord', () => {
  it('reads every record of both datasets as capnp-ts does', () => {
    const start = Date.UTC(2026, 10, 1);
    for (const records of [uniformRecords({ seed: 3n, startMillis: start, rate: 200 }), realisticRecords({ seed: 3n, startMillis: start, rate: 200 })]) {
      for (let i = 0; i < 2_000; i++) {
        const record = records.next().value!;
        const bytes = encodeRecord(record);
        const decoded = decodeRecord(bytes);
        expect(decoded).toEqual(decodeWithCapnpTs(bytes));
        expect(decoded.rawRemoteAddr).toBe(record.remoteAddr);
        expect(decoded.url).toBe(record.url);
        expect(decoded.resourceId).toBe(record.resourceId);
      }
    }
  });

  it('agrees on edge values: empty and non-ASCII text, long text, the largest integers', () => {
    const cases: SourceRecord[] = [
      { ...base, cacheStatus: '', method: '', remoteAddr: '', url: '' },
      { ...base, url: '/ünïcødé/路径/😀?q=é', remoteAddr: '[2001:db8::1]:443' },
      { ...base, url: `/${'x'.repeat(5_000)}` },
      { ...base, resourceId: 2n ** 64n - 1n, bytesSent: 2n ** 64n - 1n, requestTimeMilli: 2n ** 64n - 1n, responseStatus: 65_535 },
      { ...base, timestampEpochMilli: 0n },
      { ...base, timestampEpochMilli: 4_294_967_295_999n },
    ];
    for (const record of cases) {
      const bytes = encodeRecord(record);
      expectSameReading(bytes);
      const decoded = decodeRecord(bytes);
      expect([decoded.url, decoded.rawRemoteAddr, decoded.cacheStatus, decoded.method]).toEqual([record.url, record.remoteAddr, record.cacheStatus, record.method]);
    }
  });

  it('rejects a timestamp past the end of DateTime, as capnp-ts does', () => {
    const bytes = encodeRecord({ ...base, timestampEpochMilli: 4_294_967_296_000n });
    expect(() => decodeRecord(bytes)).toThrow(TimestampRangeError);
    expectSameReading(bytes);
  });

  it('gives the same record or the same error on corrupted messages', () => {
    const random = new SplitMix64(11n);
    const records = uniformRecords({ seed: 5n, startMillis: Date.UTC(2026, 10, 1), rate: 200 });
    let errors = 0;
    for (let i = 0; i < 3_000; i++) {
      const bytes = Uint8Array.from(encodeRecord(records.next().value!));
      // One to three random bytes replaced, anywhere: segment table, pointers, data, text.
      const flips = 1 + random.below(3);
      for (let f = 0; f < flips; f++) bytes[random.below(bytes.byteLength)] = random.below(256);
      const reading = outcome(decodeRecord, bytes);
      if ('error' in reading) errors++;
      expect(reading).toEqual(outcome(decodeWithCapnpTs, bytes));
    }
    // The corruption must reach the pointers often enough for errors to be compared too.
    expect(errors).toBeGreaterThan(100);
  });

  it('gives the same error for truncated and empty messages', () => {
    const bytes = encodeRecord(base);
    for (const cut of [0, 4, 8, 15, 16, 40, bytes.byteLength - 8, bytes.byteLength - 1]) expectSameReading(bytes.subarray(0, cut));
  });

  it('rejects a segment table that claims more than the message holds, in bounded time', () => {
    const bomb = new Uint8Array(16);
    new DataView(bomb.buffer).setUint32(0, 0x01ff_ffff, true); // 2^25 segments claimed in 16 bytes
    expect(() => decodeRecord(bomb)).toThrow(DecodeError);
    // capnp-ts alone took ~137 ms for one, ~40,000 times a valid decode; now a rejection
    // costs about what a valid decode does (compared on the same machine, at the same moment).
    const valid = encodeRecord(base);
    const timeOf = (bytes: Uint8Array): number => {
      const started = performance.now();
      for (let i = 0; i < 10_000; i++) {
        try {
          decodeRecord(bytes);
        } catch {
          // rejected
        }
      }
      return performance.now() - started;
    };
    let bombs = Number.POSITIVE_INFINITY;
    let valids = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 3; round++) {
      bombs = Math.min(bombs, timeOf(bomb));
      valids = Math.min(valids, timeOf(valid));
    }
    expect(bombs).toBeLessThan(10 * valids);
    const sizes = Uint8Array.from(encodeRecord(base));
    new DataView(sizes.buffer).setUint32(4, 0xffff_ffff, true); // one segment of 2^32 words
    expect(() => decodeRecord(sizes)).toThrow(/segment table claims/);
    const many = Uint8Array.from(encodeRecord(base));
    new DataView(many.buffer).setUint32(0, 511, true); // 512 segments: the header alone is 2 KiB
    expect(() => decodeRecord(many)).toThrow(/more than \d+ bytes can hold/);
  });

  it('refuses a text that is not valid UTF-8 or has no NUL terminator, as InvalidTextError', () => {
    const bytes = Uint8Array.from(encodeRecord({ ...base, url: '/é' }));
    const at = Buffer.from(bytes).indexOf(Buffer.from('/é'));
    const overlong = Uint8Array.from(bytes);
    overlong[at + 1] = 0xc0; // C0 A9: an overlong encoding, which capnp-ts would read as a character
    expect(() => decodeRecord(overlong)).toThrow(InvalidTextError);
    const unterminated = Uint8Array.from(bytes);
    unterminated[at + 3] = 0x41; // the NUL after the text
    expect(() => decodeRecord(unterminated)).toThrow(/not NUL-terminated/);
    expectSameReading(overlong);
    expectSameReading(unterminated);
  });

  it('refuses two texts that share bytes (a pointer rewritten onto the address), in both readings', () => {
    const bytes = Uint8Array.from(encodeRecord({ ...base, url: '/x' }));
    const [, , address, url] = textPointers(bytes);
    pointTo(bytes, url!.at, address!.start, address!.count);
    expect(() => decodeRecord(bytes)).toThrow(/url shares bytes with remote_addr/);
    expectSameReading(bytes);
    // Empty texts carry nothing to share: two of them may be anywhere.
    const empty = encodeRecord({ ...base, cacheStatus: '', method: '' });
    expect(decodeRecord(empty).method).toBe('');
  });
});
