/**
 * Wire protocol: one spool batch file, and the names it takes in `batches/`. The one place
 * that knows the format: encode and decode sit side by side. The rule it serves: never trust
 * an incomplete file (every file is verified before its offsets are committed, and at every
 * start; docs/guarantees.md, "The spool never publishes, commits or trusts an incomplete file").
 *
 * Version 2 (written since the full-disk fix):
 *
 *   "HLSPOOL2" | u32 LE header length | 32 bytes SHA-256 of the header bytes | header JSON | body
 *
 * The header names the body's size and SHA-256, so the header's checksum covers the whole
 * file: a flipped bit anywhere, or a file cut short, fails the check.
 *
 * Version 1 (read, never written): "HLSPOOL1" | u32 LE header length | header JSON | body.
 * Its body is checked against the header's SHA-256; its header has no checksum of its own.
 *
 * A queued batch is named `<seq, 12+ digits>-<token>.batch`; anything else in `batches/` is
 * foreign and never takes part in numbering.
 */
import { createHash } from 'node:crypto';
import type { Codec, SealedBatch } from '../domain/batch.ts';
import { SpoolFileCorruptError, type SpoolCorruption } from '../errors.ts';

const MAGIC_V1 = Buffer.from('HLSPOOL1');
const MAGIC_V2 = Buffer.from('HLSPOOL2');
const SHA256_BYTES = 32;
const V1_PREFIX = MAGIC_V1.byteLength + 4;
const V2_PREFIX = MAGIC_V2.byteLength + 4 + SHA256_BYTES;

export interface SpoolHeader {
  readonly version: 1 | 2;
  readonly token: string;
  readonly format: SealedBatch['format'];
  readonly codec: Codec;
  readonly rowCount: number;
  readonly uncompressedBytes: number;
  readonly bodyBytes: number;
  readonly bodySha256: string;
  readonly topic: string;
  /** [partition, last offset covered] pairs. */
  readonly offsets: ReadonlyArray<readonly [number, number]>;
  readonly sealedAt: string;
  /** Set on the parts of a batch split after a 413: the parent is gone once every part exists. */
  readonly parent?: { readonly token: string; readonly parts: number; readonly index: number };
  /** The oldest and newest record timestamps in the batch, epoch seconds (absent in batches spooled before it existed). */
  readonly eventTime?: readonly [number, number];
  /** What sealed the batch (absent in batches spooled before it existed). */
  readonly sealReason?: SealedBatch['sealReason'];
}

/** The header a sealed batch gets when it is spooled (always the current version). */
export function headerFor(batch: SealedBatch, topic: string, parent?: SpoolHeader['parent'], sealedAt = new Date()): SpoolHeader {
  return {
    version: 2,
    token: batch.token,
    format: batch.format,
    codec: batch.codec,
    rowCount: batch.rowCount,
    uncompressedBytes: batch.uncompressedBytes,
    bodyBytes: batch.body.byteLength,
    bodySha256: sha256(batch.body),
    topic,
    offsets: [...batch.offsets],
    sealedAt: sealedAt.toISOString(),
    ...(parent ? { parent } : {}),
    ...(batch.eventTime ? { eventTime: batch.eventTime } : {}),
    ...(batch.sealReason ? { sealReason: batch.sealReason } : {}),
  };
}

/** The file's bytes, as chunks to write in order (the body is not copied). */
export function encodeBatchFile(header: SpoolHeader, body: Uint8Array): Uint8Array[] {
  const headerBytes = Buffer.from(JSON.stringify({ ...header, version: 2 }));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(headerBytes.byteLength);
  return [MAGIC_V2, length, createHash('sha256').update(headerBytes).digest(), headerBytes, body];
}

export interface DecodedBatchFile {
  readonly header: SpoolHeader;
  readonly body: Uint8Array;
}

/**
 * Checks and splits a batch file: magic, length, header checksum (version 2), header
 * fields, body size and checksum. Throws `SpoolFileCorruptError` with the reason; when the
 * header itself passed its check, the error carries it (what the batch claimed).
 */
export function decodeBatchFile(content: Uint8Array, file: string): DecodedBatchFile {
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const { header, headerEnd } = decodeHeaderPart(bytes, file);
  const body = bytes.subarray(headerEnd);
  if (body.byteLength !== header.bodyBytes) {
    const reason: SpoolCorruption = body.byteLength < header.bodyBytes ? 'truncated' : 'body_size';
    throw new SpoolFileCorruptError(`${file}: the body is ${body.byteLength} bytes, its header says ${header.bodyBytes}`, reason, header);
  }
  if (sha256(body) !== header.bodySha256) throw new SpoolFileCorruptError(`${file}: the body does not match its checksum`, 'body_checksum', header);
  return { header, body };
}

function decodeHeaderPart(bytes: Buffer, file: string): { header: SpoolHeader; headerEnd: number } {
  const magic = bytes.subarray(0, 8);
  const v2 = magic.equals(MAGIC_V2);
  if (!v2 && !magic.equals(MAGIC_V1)) {
    // Shorter than the magic and a start of it: a file cut short; anything else is not ours.
    const cut = bytes.byteLength < 8 && [MAGIC_V1, MAGIC_V2].some((m) => m.subarray(0, bytes.byteLength).equals(bytes));
    throw new SpoolFileCorruptError(`${file} is not a spool batch file`, cut ? 'truncated' : 'not_a_batch_file');
  }
  const prefix = v2 ? V2_PREFIX : V1_PREFIX;
  if (bytes.byteLength < prefix) throw new SpoolFileCorruptError(`${file}: cut short inside its prefix`, 'truncated');
  const headerLength = bytes.readUInt32LE(8);
  const headerEnd = prefix + headerLength;
  if (headerEnd > bytes.byteLength) throw new SpoolFileCorruptError(`${file}: the header runs past the end of the file`, 'truncated');
  const headerBytes = bytes.subarray(prefix, headerEnd);
  if (v2 && !createHash('sha256').update(headerBytes).digest().equals(bytes.subarray(12, V2_PREFIX))) {
    throw new SpoolFileCorruptError(`${file}: the header does not match its checksum`, 'header_checksum');
  }
  let header: SpoolHeader;
  try {
    header = JSON.parse(headerBytes.toString('utf8')) as SpoolHeader;
  } catch (error) {
    throw new SpoolFileCorruptError(`${file}: the header is not JSON (${(error as Error).message})`, 'header_unreadable');
  }
  if (!isHeader(header)) throw new SpoolFileCorruptError(`${file}: the header lacks required fields`, 'header_unreadable');
  return { header: { ...header, version: v2 ? 2 : 1 }, headerEnd };
}

function isHeader(value: unknown): value is SpoolHeader {
  const header = value as Partial<SpoolHeader> | null;
  return (
    typeof header === 'object' &&
    header !== null &&
    typeof header.token === 'string' &&
    TOKEN.test(header.token) &&
    typeof header.bodyBytes === 'number' &&
    Number.isSafeInteger(header.bodyBytes) &&
    header.bodyBytes >= 0 &&
    typeof header.bodySha256 === 'string' &&
    typeof header.rowCount === 'number' &&
    Array.isArray(header.offsets) &&
    header.offsets.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every((n) => Number.isSafeInteger(n)))
  );
}

/** The total size of the file `encodeBatchFile` makes, known before writing. */
export function encodedSize(chunks: readonly Uint8Array[]): number {
  return chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
}

// Tokens are UUIDs, or a UUID with `-<index>` per split level; tests use short names.
const TOKEN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const BATCH_NAME = /^(\d{12,})-([A-Za-z0-9][A-Za-z0-9._-]*)\.batch$/;

/** The name of a queued batch: its place in the send order, then its token. */
export function batchFileName(seq: number, token: string): string {
  return `${String(seq).padStart(12, '0')}-${token}.batch`;
}

/** `{ seq, token }` of a queued batch's name, or undefined for a foreign name. */
export function parseBatchFileName(name: string): { seq: number; token: string } | undefined {
  const match = BATCH_NAME.exec(name);
  if (!match) return undefined;
  const seq = Number(match[1]);
  return Number.isSafeInteger(seq) ? { seq, token: match[2]! } : undefined;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
