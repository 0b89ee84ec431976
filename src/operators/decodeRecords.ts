import { concatMap, Observable, of, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { DecodedChunk, OffsetChunk, RejectedMessage, SourceMessage } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
import { AnonymizerError, DecodeError } from '../errors.ts';

export interface DecodeRecordsConfig {
  /** Turns one message value into a record, or throws an `AnonymizerError` saying why it can't. */
  readonly decode: (value: Uint8Array) => DecodedRecord;
  /**
   * Throws an `AnonymizerError` (e.g. `InvalidTextError`) when a decoded record must not
   * become a row (`validateRecord`). Default: every decoded record is kept.
   */
  readonly validate?: (record: DecodedRecord) => void;
  /**
   * Longest the operator decodes before it lets the event loop run, in ms. A chunk that
   * takes longer (a 1 MB fetch of 16-byte garbage is ~50,000 messages) comes out as several
   * consecutive chunks, each ending at the offset of its last message, the next one
   * decoded after a macrotask (`setImmediate`), so timers, I/O, `/healthz` and signals are
   * served between them. Default: no limit (one chunk out per chunk in).
   */
  readonly sliceMs?: number;
  /** The clock for `sliceMs`, in ms. Default `performance.now`. */
  readonly now?: () => number;
  /** Where the next slice is scheduled. Default: `setImmediate` (a macrotask; RxJS's asap is a microtask). */
  readonly scheduler?: SchedulerLike;
}

/**
 * A decoded chunk that also says which message each item came from (`sources[i]` for
 * `items[i]`), so a later step that refuses a row (`rejectOversizedRows`) can dead-letter
 * its original bytes.
 */
export interface SourcedChunk<T> extends DecodedChunk<T> {
  readonly sources: readonly SourceMessage[];
}

/**
 * Decodes the Cap'n Proto messages of each Kafka chunk into records, listing the ones that cannot be rows.
 *
 * <span class="informal">A `map` over chunks: one chunk in, one chunk out, with the same offset span.</span>
 *
 * Each message of a partition's chunk goes through `decode`. A message that cannot become
 * a row (not a valid `HttpLogRecord`, a timestamp past the end of `DateTime`, a tombstone
 * with no value, a text `validate` refuses) is not dropped: it is listed in the chunk's `rejected`, with the
 * `AnonymizerError` saying why, for `deadLetter`. It stays covered by `lastOffset`, so it is
 * committed past once that step has kept it. `itemOffsets` gives the offset of each row.
 *
 * ```
 * source:  -a-b-|        a = [m10, bad, m12], b = [tombstone]
 * result:  -x-y-|        x = [r10, r12], rejected [bad]; y = [], rejected [tombstone]
 *                         (each with `sources`: the message of each item)
 * ```
 *
 * Errors and completion of the source pass through unchanged.
 *
 * @param config `decode`: one message value to a `DecodedRecord`; throws to reject it
 * (a non-`AnonymizerError` is wrapped in a `DecodeError`).
 * @returns An operator from chunks of Kafka messages to decoded chunks, in order.
 * @see {@link deadLetter} keeps the rejected messages before their offsets are committed.
 * @see {@link anonymizeAddresses} comes next.
 *
 * @example
 * ```ts
 * import { decodeRecord, decodeRecords, deadLetter } from 'http-log-anonymizer';
 *
 * kafkaChunks$.pipe(
 *   decodeRecords({ decode: decodeRecord }),
 *   deadLetter({ send: (rejected) => dlq.send(rejected) }),
 * );
 * ```
 */
export function decodeRecords(config: DecodeRecordsConfig): OperatorFunction<OffsetChunk<SourceMessage>, SourcedChunk<DecodedRecord>> {
  const now = config.now ?? (() => performance.now());
  /** Decodes `chunk.items[from…]` until the slice's time is up; returns where it stopped. */
  const decodeSlice = (chunk: OffsetChunk<SourceMessage>, from: number): { out: SourcedChunk<DecodedRecord>; next: number } => {
    const items: DecodedRecord[] = [];
    const itemOffsets: number[] = [];
    const sources: SourceMessage[] = [];
    const rejected: RejectedMessage[] = [];
    const deadline = config.sliceMs === undefined ? Number.POSITIVE_INFINITY : now() + config.sliceMs;
    let index = from;
    for (; index < chunk.items.length; index++) {
      // The clock is read every 16 messages: cheap, and no message takes long since its
      // segment table is checked first (decoding is linear in the bytes really there).
      if (index > from && (index - from) % 16 === 0 && now() >= deadline) break;
      const message = chunk.items[index]!;
      try {
        if (message.value === null) throw new DecodeError('the message has no value (a tombstone)');
        const record = config.decode(message.value);
        config.validate?.(record);
        items.push(record);
        itemOffsets.push(message.offset);
        sources.push(message);
      } catch (error) {
        rejected.push({ message, error: error instanceof AnonymizerError ? error : new DecodeError(String(error), { cause: error }) });
      }
    }
    const whole = index >= chunk.items.length;
    const lastOffset = whole ? chunk.lastOffset : chunk.items[index - 1]!.offset;
    return { out: { ...chunk, items, itemOffsets, sources, rejected, lastOffset }, next: index };
  };
  return concatMap((chunk) => {
    const first = decodeSlice(chunk, 0);
    if (first.next >= chunk.items.length) return of(first.out);
    return new Observable<SourcedChunk<DecodedRecord>>((subscriber) => {
      let cancel: (() => void) | undefined;
      const resume = (from: number): void => {
        cancel = undefined;
        let slice;
        try {
          slice = decodeSlice(chunk, from);
        } catch (error) {
          subscriber.error(error);
          return;
        }
        subscriber.next(slice.out);
        if (slice.next >= chunk.items.length) subscriber.complete();
        else cancel = later(() => resume(slice.next));
      };
      const later = (work: () => void): (() => void) => {
        if (config.scheduler) {
          const scheduled = config.scheduler.schedule(work);
          return () => scheduled.unsubscribe();
        }
        const immediate = setImmediate(work);
        return () => clearImmediate(immediate);
      };
      subscriber.next(first.out);
      cancel = later(() => resume(first.next));
      return () => cancel?.();
    });
  });
}
