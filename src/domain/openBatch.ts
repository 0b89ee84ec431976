/**
 * The rows gathered for the next insert and the Kafka offsets they claim: pure
 * bookkeeping for `sealBatches`, no I/O and no timers.
 *
 * A batch claims the offsets of what it holds, so committing them after it is durable
 * never runs ahead of the data, and never leaves rows it holds to be read again. When a
 * body fills in the middle of the open rows, the part taken claims the offset of its own
 * last row per partition (when the chunks carried `itemOffsets`); the rest keeps the open
 * batch's whole span, since it holds every row after the part.
 */
import { mergeOffsets, type OffsetChunk, type PreparedBody, type RowBatch, type SealReason } from './batch.ts';

export class OpenBatch<T> {
  #rows: T[] = [];
  #sizes: number[] = [];
  #bytes = 0;
  #offsets = new Map<number, number>();
  #generation: number | undefined;
  #rowPartitions: number[] = [];
  #rowOffsets: number[] = [];
  /** Row offsets are kept only while every chunk so far carried them. */
  #rowOffsetsKnown = true;

  /** Open rows. */
  get length(): number {
    return this.#rows.length;
  }

  /** Their estimated size (the sum of `sizeOf`). */
  get bytes(): number {
    return this.#bytes;
  }

  get generation(): number | undefined {
    return this.#generation;
  }

  /** Nothing to seal: no rows and no offsets (a chunk of rejected messages still claims its offsets). */
  get isEmpty(): boolean {
    return this.#rows.length === 0 && this.#offsets.size === 0;
  }

  /** The first `count` rows. */
  rows(count = this.#rows.length): readonly T[] {
    return this.#rows.slice(0, count);
  }

  /** The estimated size of the first `count` rows. */
  bytesOf(count: number): number {
    let sum = 0;
    for (let i = 0; i < count && i < this.#sizes.length; i++) sum += this.#sizes[i]!;
    return sum;
  }

  /** How many of the open rows reach `estimatedBytes` (at least 1 when any is open). */
  countFor(estimatedBytes: number): number {
    let sum = 0;
    for (let i = 0; i < this.#sizes.length; i++) {
      sum += this.#sizes[i]!;
      if (sum >= estimatedBytes) return i + 1;
    }
    return this.#sizes.length;
  }

  /** A chunk arrives: it takes the chunk's generation; a chunk without row offsets makes part-sealing impossible. */
  beginChunk(chunk: OffsetChunk<T>): void {
    if (chunk.generation !== undefined) this.#generation = chunk.generation;
    if (chunk.itemOffsets === undefined && chunk.items.length > 0) this.#rowOffsetsKnown = false;
  }

  /** One row of `chunk`, at `offset` when the chunk carries row offsets. */
  add(item: T, size: number, chunk: OffsetChunk<T>, offset: number | undefined): void {
    if (chunk.generation !== undefined) this.#generation = chunk.generation;
    this.#rows.push(item);
    this.#sizes.push(size);
    this.#bytes += size;
    if (offset !== undefined) {
      this.#rowPartitions.push(chunk.partition);
      this.#rowOffsets.push(offset);
      mergeOffsets(this.#offsets, chunk.partition, offset);
    } else if (this.#rows.length === 1) {
      // A new batch that starts inside a chunk without item offsets.
      this.#rowOffsetsKnown = false;
    }
  }

  /** The chunk is done: the batch covers up to its last offset (rejected messages included). */
  endChunk(chunk: OffsetChunk<T>): void {
    mergeOffsets(this.#offsets, chunk.partition, chunk.lastOffset);
  }

  /**
   * Takes the first `count` rows (all by default) as a batch; the rest stay open. Without
   * row offsets a part cannot claim its rows, so everything is taken. Undefined when empty.
   */
  take(reason: SealReason, count = this.#rows.length, prepared?: PreparedBody): RowBatch<T> | undefined {
    if (this.isEmpty) return undefined;
    if (count < this.#rows.length && !this.#rowOffsetsKnown) return this.take(reason);
    const whole = count >= this.#rows.length;
    const rows = this.#rows.slice(0, count);
    let claimed = this.#offsets;
    if (!whole) {
      claimed = new Map();
      for (let i = 0; i < count; i++) mergeOffsets(claimed, this.#rowPartitions[i]!, this.#rowOffsets[i]!);
    }
    const batch: RowBatch<T> = {
      rows,
      offsets: claimed,
      reason,
      ...(this.#generation === undefined ? {} : { generation: this.#generation }),
      ...(this.#rowOffsetsKnown && rows.length > 0 ? { rowOffsets: { partitions: this.#rowPartitions.slice(0, count), offsets: this.#rowOffsets.slice(0, count) } } : {}),
      ...(prepared === undefined ? {} : { prepared }),
    };
    if (whole) this.#clear();
    else this.#drop(count);
    return batch;
  }

  #clear(): void {
    this.#rows = [];
    this.#sizes = [];
    this.#bytes = 0;
    this.#offsets = new Map();
    this.#generation = undefined;
    this.#rowPartitions = [];
    this.#rowOffsets = [];
    this.#rowOffsetsKnown = true;
  }

  #drop(count: number): void {
    this.#rows = this.#rows.slice(count);
    this.#sizes = this.#sizes.slice(count);
    this.#bytes = this.#sizes.reduce((sum, size) => sum + size, 0);
    this.#rowPartitions = this.#rowPartitions.slice(count);
    this.#rowOffsets = this.#rowOffsets.slice(count);
  }
}
