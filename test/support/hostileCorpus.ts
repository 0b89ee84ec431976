/**
 * A seeded corpus of hostile Cap'n Proto messages, shared by the
 * unit fuzz (src/domain/hostileInput.test.ts) and the real-stack one
 * (test/e2e/hostileInput.test.ts).
 *
 * Each message starts as a valid `HttpLogRecord` whose client address is distinctive
 * (`10.77.x.y`, so a leak is easy to search for; some URLs carry it too), then gets one
 * mutation: bit flips, byte rewrites, a truncation, a text pointer rewritten to land on
 * other bytes of the message (the address's, most often), or a rewritten segment table
 * (segment-count bombs included). The same seed gives the same corpus.
 *
 * `expectedOutcome` runs the product's own steps (decode, validate, anonymize) on one
 * message: what the pipeline must do with it, stored as a row or dead-lettered with a code.
 */
import { decodeRecord } from '../../src/domain/decodeRecord.ts';
import { encodeRecord, type SourceRecord } from '../../src/domain/encodeRecord.ts';
import { anonymizeAddress, anonymizeUrlAddresses } from '../../src/domain/anonymizeAddress.ts';
import type { HttpLogRow } from '../../src/domain/httpLogRow.ts';
import { validateRecord } from '../../src/domain/validateRecord.ts';
import { AnonymizerError } from '../../src/errors.ts';
import { SplitMix64 } from '../../src/synthetic/uniformDataset.ts';

export type MutationKind = 'none' | 'bit-flips' | 'byte-rewrites' | 'truncation' | 'pointer' | 'pointer-to-address' | 'segment-table' | 'segment-bomb';

export interface HostileMessage {
  readonly bytes: Uint8Array;
  readonly kind: MutationKind;
  /** Every raw address the message was built with: none may be stored. */
  readonly addresses: readonly string[];
}

export type Outcome = { readonly row: HttpLogRow } | { readonly rejected: string };

const METHODS = ['GET', 'HEAD', 'POST'];
const CACHE = ['HIT', 'MISS', 'STALE', 'BYPASS'];

function baseRecord(random: SplitMix64, startMillis: number, index: number): { record: SourceRecord; addresses: string[] } {
  const remoteAddr = `10.77.${random.below(256)}.${random.below(256)}`;
  const path = `/fuzz/${index}/${random.below(1_000_000).toString(16)}`;
  const ipv6 = `2001:db8:77:${(1 + random.below(65_535)).toString(16)}::${(1 + random.below(65_535)).toString(16)}`;
  // One URL in five carries the client's address, as proxies and trackers write it; one in twenty an IPv6 host.
  const kind = random.below(20);
  const url = kind < 4 ? `${path}?client=${remoteAddr}` : kind === 4 ? `http://[${ipv6}]${path}` : path;
  const record: SourceRecord = {
    timestampEpochMilli: BigInt(startMillis + index * 7),
    resourceId: BigInt(random.below(1_000_000_000)),
    bytesSent: BigInt(random.below(5_000_000)),
    requestTimeMilli: BigInt(random.below(50_000)),
    responseStatus: random.pick([200, 206, 304, 404, 500]),
    cacheStatus: random.pick(CACHE),
    method: random.pick(METHODS),
    remoteAddr,
    url,
  };
  return { record, addresses: kind === 4 ? [remoteAddr, ipv6] : [remoteAddr] };
}

/** Where each text pointer and its bytes are in a one-segment message (as capnp-ts writes it). */
export function textPointers(bytes: Uint8Array): Array<{ at: number; start: number; count: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const root = 8;
  const rootLow = view.getUint32(root, true);
  const dataWords = view.getUint16(root + 4, true);
  const pointers = root + 8 + (rootLow >> 2) * 8 + dataWords * 8;
  const out: Array<{ at: number; start: number; count: number }> = [];
  for (let i = 0; i < 4; i++) {
    const at = pointers + i * 8;
    const low = view.getUint32(at, true);
    const high = view.getUint32(at + 4, true);
    out.push({ at, start: at + 8 + (low >> 2) * 8, count: high >>> 3 });
  }
  return out;
}

/** Points the text pointer at `at` to `count` bytes from `start` (rounded down to a word, as pointers are). */
export function pointTo(bytes: Uint8Array, at: number, start: number, count: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = Math.floor((start - (at + 8)) / 8);
  view.setUint32(at, ((words << 2) | 1) >>> 0, true);
  view.setUint32(at + 4, ((count << 3) | 2) >>> 0, true);
}

function mutate(random: SplitMix64, original: Uint8Array, record: SourceRecord): { bytes: Uint8Array; kind: MutationKind } {
  const bytes = Uint8Array.from(original);
  const view = new DataView(bytes.buffer);
  const roll = random.below(100);
  if (roll < 5) return { bytes, kind: 'none' };
  if (roll < 30) {
    const flips = 1 + random.below(4);
    for (let i = 0; i < flips; i++) bytes[random.below(bytes.length)]! ^= 1 << random.below(8);
    return { bytes, kind: 'bit-flips' };
  }
  if (roll < 42) {
    const rewrites = 1 + random.below(3);
    for (let i = 0; i < rewrites; i++) bytes[random.below(bytes.length)] = random.below(256);
    return { bytes, kind: 'byte-rewrites' };
  }
  if (roll < 50) return { bytes: bytes.subarray(0, random.below(bytes.length)), kind: 'truncation' };
  if (roll < 62) {
    // Any text pointer to any word of the segment, with any plausible length.
    const texts = textPointers(bytes);
    const target = random.pick(texts);
    const start = 16 + 8 * random.below(Math.max(1, (bytes.length - 16) / 8));
    pointTo(bytes, target.at, start, 1 + random.below(Math.max(1, bytes.length - start + 4)));
    return { bytes, kind: 'pointer' };
  }
  if (roll < 80) {
    // url, method or cache_status pointed at the address bytes (the fault fuzzing found):
    // exactly the address with its NUL, or a window around it.
    const texts = textPointers(bytes);
    const address = texts[2]!;
    const target = texts[random.pick([0, 1, 3])]!;
    const exact = random.below(2) === 0;
    const start = exact ? address.start : Math.max(16, address.start - 8 * random.below(3));
    const count = exact ? address.count : Math.min(bytes.length - start, address.count + random.below(24));
    pointTo(bytes, target.at, start, Math.max(1, count));
    if (random.below(4) === 0) bytes[random.below(bytes.length)]! ^= 1 << random.below(8);
    return { bytes, kind: 'pointer-to-address' };
  }
  if (roll < 90) {
    // The segment table: a segment count, a segment size, or both.
    const what = random.below(3);
    if (what !== 1) view.setUint32(0, random.below(4) === 0 ? random.below(1_024) : random.below(8), true);
    if (what !== 0) view.setUint32(4, random.below(2) === 0 ? random.below(64) : random.below(0xffff_ffff), true);
    void record;
    return { bytes, kind: 'segment-table' };
  }
  // A segment-count bomb: 16 bytes claiming 2^25 segments.
  const bomb = new Uint8Array(16);
  new DataView(bomb.buffer).setUint32(0, 0x01ff_ffff, true);
  for (let i = 4; i < 16; i++) bomb[i] = random.below(4) === 0 ? random.below(256) : 0;
  return { bytes: bomb, kind: 'segment-bomb' };
}

export interface CorpusOptions {
  readonly seed: bigint;
  readonly count: number;
  /** The first record's timestamp, ms; each next one is 7 ms later. */
  readonly startMillis: number;
  /**
   * Keep a message only if this accepts its outcome; else it is mutated again from a new
   * base record (at most 20 times). The real-stack fuzz keeps stored rows inside a day of
   * `startMillis`: a flipped timestamp bit can date a row decades away, where the table's TTL
   * drops it and its partition counts against `max_partitions_per_insert_block` (the many-partitions fault,
   * tested on its own).
   */
  readonly accept?: (outcome: Outcome) => boolean;
}

export function hostileCorpus(options: CorpusOptions): HostileMessage[] {
  const random = new SplitMix64(options.seed);
  const out: HostileMessage[] = [];
  for (let index = 0; out.length < options.count; index++) {
    for (let attempt = 0; ; attempt++) {
      const { record, addresses } = baseRecord(random, options.startMillis, index);
      const { bytes, kind } = mutate(random, encodeRecord(record), record);
      if (attempt < 20 && options.accept !== undefined && !options.accept(expectedOutcome(bytes))) continue;
      out.push({ bytes, kind, addresses });
      break;
    }
  }
  return out;
}

/** What the pipeline's decode → validate → anonymize steps make of one message. */
export function expectedOutcome(bytes: Uint8Array, anonymizeUrls = true): Outcome {
  try {
    const record = decodeRecord(bytes);
    validateRecord(record);
    const { rawRemoteAddr, ...fields } = record;
    return { row: { ...fields, url: anonymizeUrls ? anonymizeUrlAddresses(record.url) : record.url, remoteAddr: anonymizeAddress(rawRemoteAddr).value } };
  } catch (error) {
    if (error instanceof AnonymizerError) return { rejected: error.code };
    throw error;
  }
}

/** The text columns of a row that hold any of `addresses` verbatim. */
export function leakedColumns(row: HttpLogRow, addresses: readonly string[]): string[] {
  const columns: Array<[string, string]> = [
    ['url', row.url],
    ['method', row.method],
    ['cache_status', row.cacheStatus],
    ['remote_addr', row.remoteAddr],
  ];
  return columns.filter(([, value]) => addresses.some((address) => value.includes(address))).map(([name]) => name);
}
