/**
 * What the Kafka source knows of each partition it consumes, in one generation of the
 * consumer group: the last offset handed over, the last one committed, where this member
 * started reading, and how far behind the high-water mark it is. Pure bookkeeping, no I/O:
 * the source feeds it fetches and commits, and asks it the questions that decide pausing,
 * draining and what a commit's metadata records.
 */
export class PartitionProgress {
  readonly #handedOver = new Map<number, number>();
  readonly #committed = new Map<number, number>();
  readonly #lag = new Map<number, number>();
  readonly #since = new Map<number, number>();

  /** A new generation: every partition is read again from its committed offset. */
  reset(): void {
    this.#handedOver.clear();
    this.#committed.clear();
    this.#lag.clear();
    this.#since.clear();
  }

  /** A fetched batch of `partition`, offsets `first`…`last`, with the partition's high-water mark. */
  fetched(partition: number, first: number, last: number, highWatermark: number): void {
    this.#handedOver.set(partition, last);
    if (!this.#committed.has(partition)) this.#committed.set(partition, first - 1);
    if (!this.#since.has(partition)) this.#since.set(partition, first);
    this.#lag.set(partition, Math.max(0, highWatermark - 1 - last));
  }

  /** A commit landed: everything up to `offset` of `partition` is safe. */
  committedUpTo(partition: number, offset: number): void {
    this.#committed.set(partition, Math.max(this.#committed.get(partition) ?? -1, offset));
  }

  /** Messages handed over and not yet committed, over every partition. */
  outstanding(): number {
    let total = 0;
    for (const [partition, last] of this.#handedOver) total += last - (this.#committed.get(partition) ?? last);
    return total;
  }

  /** The first offset this member was handed of `partition` in this generation (-1 if none yet). */
  since(partition: number): number {
    return this.#since.get(partition) ?? -1;
  }

  /** True when every partition heard from has nothing more to fetch right now. */
  isCaughtUp(): boolean {
    for (const value of this.#lag.values()) if (value > 0) return false;
    return true;
  }

  lag(): ReadonlyMap<number, number> {
    return this.#lag;
  }

  /** Whether every partition has been handed over or committed up to its target offset. */
  reached(targets: ReadonlyMap<number, number>): boolean {
    for (const [partition, target] of targets) {
      if ((this.#handedOver.get(partition) ?? -1) < target && (this.#committed.get(partition) ?? -1) < target) return false;
    }
    return true;
  }
}

/** Whether fetching should be paused: any reason asked for it, or too much is handed over and not committed. */
export function shouldPause(reasons: ReadonlySet<string>, outstanding: number, maxOutstanding: number): boolean {
  return reasons.size > 0 || outstanding > maxOutstanding;
}
