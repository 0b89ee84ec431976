import { of, type ObservableInput, type OperatorFunction } from 'rxjs';
import { awaitEach } from './awaitEach.ts';
import type { DecodedChunk, RejectedMessage } from '../domain/batch.ts';

export interface DeadLetterConfig {
  /** Keeps the rejected messages (the dead-letter topic); completes once they are durable there. */
  readonly send: (rejected: readonly RejectedMessage[]) => ObservableInput<unknown>;
}

/**
 * Keeps each chunk's rejected messages in the dead-letter sink before passing the chunk on.
 *
 * <span class="informal">A `concatMap` that waits for the sink only when a chunk holds
 * rejected messages.</span>
 *
 * A poison message must be kept somewhere before its offset can be committed: this operator
 * holds a chunk until `send` has completed for its `rejected` messages, so a commit further
 * down can never run ahead of the dead-letter topic. Chunks without rejects pass at once.
 * Order is preserved. A failing `send` errors the stream, so nothing after it is committed.
 *
 * ```
 * chunks:  -a-b---c-|        b holds rejected messages; the sink takes 2 frames
 * result:  -a---b-c-|
 * ```
 *
 * @param config `send`: keeps the rejected messages durably; completes (or resolves) once they are.
 * @returns An operator that re-emits every decoded chunk, in order, after its rejects are kept.
 * @see {@link decodeRecords} which lists the rejected messages.
 *
 * @example
 * ```ts
 * import { deadLetter, decodeRecord, decodeRecords } from 'http-log-anonymizer';
 *
 * kafkaChunks$.pipe(
 *   decodeRecords({ decode: decodeRecord }),
 *   deadLetter({ send: (rejected) => dlq.send(rejected) }),
 * );
 * ```
 */
export function deadLetter<T>(config: DeadLetterConfig): OperatorFunction<DecodedChunk<T>, DecodedChunk<T>> {
  return awaitEach(
    (chunk: DecodedChunk<T>) => (chunk.rejected.length === 0 ? of(undefined) : config.send(chunk.rejected)),
    (chunk) => chunk,
  );
}
