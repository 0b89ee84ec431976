/**
 * What travels down the chain. Acknowledgements travel with the data: every chunk and
 * batch says which Kafka offsets it covers, so a commit after a successful insert knows
 * exactly what it may commit (Vector's ordered finalizers; Benthos' ack funcs).
 */
import type { AnonymizerError } from '../errors.ts';
import type { HttpLogRow } from './httpLogRow.ts';

/** Partition → the last offset covered, inclusive. Committing means committing `offset + 1`. */
export type PartitionOffsets = ReadonlyMap<number, number>;

/** A consumed Kafka message, as the source hands it over. */
export interface SourceMessage {
  readonly partition: number;
  readonly offset: number;
  readonly key?: Uint8Array | null;
  readonly value: Uint8Array | null;
}

/**
 * Consecutive items of one partition, up to and including `lastOffset`. `items` may be
 * shorter than the offsets it spans (rejected messages drop out) and may be empty: a chunk
 * of nothing but poison must still be committed past.
 */
export interface OffsetChunk<T> {
  readonly partition: number;
  readonly items: readonly T[];
  readonly lastOffset: number;
  /**
   * The offset of each item, when known. It lets a batch that takes only part of a chunk
   * claim exactly the offsets of the rows it holds: a batch that held rows it did not
   * claim would see them read again after a crash, and stored twice.
   */
  readonly itemOffsets?: readonly number[];
  /**
   * The consumer-group generation the chunk was fetched in. After a rebalance the
   * consumer reads again from the committed offsets, so a batch holding data of an older
   * generation must not be committed (it would duplicate what is read again).
   */
  readonly generation?: number;
}

/** A message that could not become a row, and why. It must reach the dead-letter topic before its offset is committed. */
export interface RejectedMessage {
  readonly message: SourceMessage;
  readonly error: AnonymizerError;
}

/** A decoded chunk: its rows, plus the messages of its span that could not become rows. */
export interface DecodedChunk<T> extends OffsetChunk<T> {
  readonly rejected: readonly RejectedMessage[];
}

export type SealReason = 'size' | 'proxy-ready' | 'end-of-input' | 'rebalance';

/** Rows gathered for one insert, not yet encoded. */
export interface RowBatch<T = HttpLogRow> {
  readonly rows: readonly T[];
  readonly offsets: PartitionOffsets;
  readonly reason: SealReason;
  /** The consumer-group generation of its chunks (a batch never mixes two; see `OffsetChunk.generation`). */
  readonly generation?: number;
  /**
   * Where each row came from, when the chunks said (`itemOffsets`): `partitions[i]` and
   * `offsets[i]` for `rows[i]`. Lets a batch split later give each part exactly the
   * offsets of its own rows.
   */
  readonly rowOffsets?: { readonly partitions: readonly number[]; readonly offsets: readonly number[] };
  /**
   * The batch's insert body, already encoded and compressed when the sealer measured it
   * to fit the body limit (`sealBatches`' `fit`): the encoder sends it as it is.
   */
  readonly prepared?: PreparedBody;
}

/** An insert body made while sealing, for exactly the rows of its batch. */
export interface PreparedBody {
  readonly body: Uint8Array;
  readonly uncompressedBytes: number;
}

export type Codec = 'br' | 'zstd' | 'gzip' | 'none';

/** An encoded, compressed insert body, fixed from the moment it is sealed. */
export interface SealedBatch {
  /** The `insert_deduplication_token`: every attempt of this batch sends it with the same bytes. */
  readonly token: string;
  readonly body: Uint8Array;
  readonly format: 'Native' | 'CompactNative1';
  readonly codec: Codec;
  readonly rowCount: number;
  readonly uncompressedBytes: number;
  /** Offsets this batch lets us commit once it is stored. Empty for all but the last part of a split batch. */
  readonly offsets: PartitionOffsets;
  /** The oldest consumer-group generation of its data (see `OffsetChunk.generation`). */
  readonly generation?: number;
  /** The oldest and newest record timestamps it holds, in epoch seconds (for the end-to-end latency). */
  readonly eventTime?: readonly [number, number];
  /** What sealed its batch: tells an operator why a body went out less than full. */
  readonly sealReason?: SealReason;
}

export function mergeOffsets(into: Map<number, number>, partition: number, lastOffset: number): void {
  const previous = into.get(partition);
  if (previous === undefined || lastOffset > previous) into.set(partition, lastOffset);
}
