import { describe, expect, it } from 'vitest';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { anonymizeAddress } from '../domain/anonymizeAddress.ts';
import { compactInsertQuery, compactRowSize, decodeCompact, encodeCompact, ipv4PrefixCode, isCompactBlock } from './compactFormat.ts';
import { encodeNative } from './nativeFormat.ts';
import { realisticRecords } from '../synthetic/realisticDataset.ts';
import { storedRowOf } from '../synthetic/storedRow.ts';
import { uniformRecords } from '../synthetic/uniformDataset.ts';

/** mulberry32: seeded, so a failure names the case that broke. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['/', '?', '.', 'X', '0', '1', '9', 'a', ':', '%', ' ', '\t', '\n', '\\', "'", 'é', '☃', '😀', '\u0000', '\u007f'];

/** Arbitrary strings, biased towards the characters the transforms split on. */
function randomString(random: () => number, maxLength: number): string {
  const length = Math.floor(random() * (maxLength + 1));
  let s = '';
  for (let i = 0; i < length; i++) {
    s += random() < 0.7 ? ALPHABET[Math.floor(random() * ALPHABET.length)]! : String.fromCodePoint(Math.floor(random() * 0xd7ff));
  }
  return s;
}

const EDGE_INTEGERS = [0n, 1n, 255n, 256n, 65_535n, 65_536n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];

function randomUInt64(random: () => number): bigint {
  if (random() < 0.3) return EDGE_INTEGERS[Math.floor(random() * EDGE_INTEGERS.length)]!;
  const bits = BigInt(Math.floor(random() * 65));
  const value = (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32));
  return bits === 0n ? 0n : value & ((1n << bits) - 1n);
}

function randomAddress(random: () => number): string {
  const pick = random();
  if (pick < 0.4) return anonymizeAddress(`${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.7`).value;
  if (pick < 0.5) return anonymizeAddress(`2001:db8:${Math.floor(random() * 65_536).toString(16)}::1`).value;
  if (pick < 0.55) return 'X';
  if (pick < 0.6) return ['', '1.2.3.X ', '01.2.3.X', '1.2.3.x', '256.1.1.X', '1.2.3.4.X', '-1.2.3.X', '1.2.3', '1.2.3.X.X', '٣.2.3.X'][Math.floor(random() * 10)]!;
  return randomString(random, 20);
}

function randomRow(random: () => number): HttpLogRow {
  return {
    timestamp: random() < 0.1 ? [0, 0xffff_ffff][Math.floor(random() * 2)]! : Math.floor(random() * 2 ** 32),
    resourceId: randomUInt64(random),
    bytesSent: randomUInt64(random),
    requestTimeMilli: randomUInt64(random),
    responseStatus: random() < 0.1 ? [0, 65_535][Math.floor(random() * 2)]! : Math.floor(random() * 65_536),
    cacheStatus: randomString(random, 12),
    method: randomString(random, 8),
    remoteAddr: randomAddress(random),
    url: randomString(random, 80),
  };
}

describe('the compact body', () => {
  it('round-trips any rows exactly: arbitrary strings, UTF-8, empty strings, IPv6, 0 and max values', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = seeded(seed);
      const rows = Array.from({ length: 1 + Math.floor(random() * 300) }, () => randomRow(random));
      expect(decodeCompact(encodeCompact(rows)), `seed ${seed}`).toEqual(rows);
    }
  });

  it('picks the narrowest resource_id width the batch needs, and still round-trips each', () => {
    const row = randomRow(seeded(7));
    for (const [max, type] of [[255n, 'UInt8'], [65_535n, 'UInt16'], [2n ** 32n - 1n, 'UInt32'], [2n ** 32n, 'UInt64']] as const) {
      const rows = [{ ...row, resourceId: 0n }, { ...row, resourceId: max }];
      const block = encodeCompact(rows);
      expect(new TextDecoder().decode(block)).toContain(`\u0001r${String.fromCharCode(type.length)}${type}`);
      expect(decodeCompact(block)).toEqual(rows);
    }
  });

  it('sends IPv4 codes whole when networks repeat and as byte planes when they do not; both round-trip', () => {
    const row = randomRow(seeded(8));
    const repeated = Array.from({ length: 100 }, (_, i) => ({ ...row, remoteAddr: `10.0.${i % 3}.X` }));
    const spread = Array.from({ length: 100 }, (_, i) => ({ ...row, remoteAddr: i === 5 ? 'X' : `10.${i}.${255 - i}.X` }));
    for (const rows of [repeated, spread]) expect(decodeCompact(encodeCompact(rows))).toEqual(rows);
    // Whole codes need 4 bytes a row in remote_addr_v4; planes leave it zero.
    const wholeBytes = (rows: HttpLogRow[]): number => {
      const block = encodeCompact(rows);
      const name = new TextEncoder().encode('\u0001v\u0006UInt32');
      const at = block.findIndex((_, i) => name.every((b, k) => block[i + k] === b)) + name.length;
      return block.subarray(at, at + 4 * rows.length).filter((b) => b !== 0).length;
    };
    expect(wholeBytes(repeated)).toBeGreaterThan(0);
    expect(wholeBytes(spread)).toBe(0);
  });

  it('an empty block round-trips', () => {
    expect(decodeCompact(encodeCompact([]))).toEqual([]);
  });

  it('maps only the canonical anonymized IPv4 spelling to a number', () => {
    expect(ipv4PrefixCode('0.0.0.X')).toBe(1);
    expect(ipv4PrefixCode('1.2.3.X')).toBe(1 + 0x010203);
    expect(ipv4PrefixCode('255.255.255.X')).toBe(1 + 0xffffff);
    for (const other of ['', 'X', '1.2.3.4', '01.2.3.X', '1.2.3.x', '256.1.1.X', '1.2.3.4.X', '1.2.X', ' 1.2.3.X', '1.2.3.X ', '1..3.X', '2001:db8::X', '1.2.3.XX']) {
      expect(ipv4PrefixCode(other), other).toBe(0);
    }
    // Every IPv4 anonymizeAddress produces is canonical, so it takes the numeric column.
    const random = seeded(3);
    for (let i = 0; i < 1000; i++) {
      const octets = [0, 1, 2].map(() => Math.floor(random() * 256));
      expect(ipv4PrefixCode(anonymizeAddress(`${octets.join('.')}.9`).value)).toBe(1 + octets[0]! * 65_536 + octets[1]! * 256 + octets[2]!);
    }
  });

  it('a truncated block is an error, not a short read', () => {
    const rows = Array.from({ length: 5 }, () => randomRow(seeded(11)));
    const block = encodeCompact(rows);
    for (const cut of [1, 3, 40, block.byteLength - 1]) expect(() => decodeCompact(block.subarray(0, block.byteLength - cut))).toThrow(RangeError);
  });

  it('is told apart from a plain Native block by its columns', () => {
    const rows = [randomRow(seeded(5))];
    expect(isCompactBlock(encodeCompact(rows))).toBe(true);
    expect(isCompactBlock(encodeNative(rows))).toBe(false);
    expect(isCompactBlock(new Uint8Array())).toBe(false);
  });

  it('the per-row size estimate is within 10% of the real body on both synthetic datasets', () => {
    for (const records of [uniformRecords, realisticRecords]) {
      const source = records({ seed: 2n, startMillis: Date.UTC(2026, 10, 1), rate: 200 });
      const rows = Array.from({ length: 5000 }, () => storedRowOf(source.next().value!));
      const estimate = rows.reduce((sum, row) => sum + compactRowSize(row), 0);
      expect(estimate / encodeCompact(rows).byteLength).toBeGreaterThan(0.9);
      expect(estimate / encodeCompact(rows).byteLength).toBeLessThan(1.1);
    }
  });

  it('names the table and reads the body through input() with every column the block has', () => {
    const query = compactInsertQuery('http_log');
    expect(query).toMatch(/^INSERT INTO http_log\(timestamp,resource_id,bytes_sent,request_time_milli,response_status,cache_status,method,remote_addr,url\)SELECT /);
    expect(query).toMatch(/ FROM input\('t0 UInt8,.*,uq LowCardinality\(String\)'\)ORDER BY ALL FORMAT Native$/);
    // It travels in the request line, which nginx counts in $request_length.
    expect(new URLSearchParams({ query }).toString().length).toBeLessThan(1_300);
  });
});
