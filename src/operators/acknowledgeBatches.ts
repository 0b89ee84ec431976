import type { ObservableInput, OperatorFunction } from 'rxjs';
import { awaitEach } from './awaitEach.ts';
import type { InsertOutcome } from './pacedInsert.ts';

export interface AcknowledgeBatchesConfig<B> {
  /** ClickHouse stored it: drop it from the spool. */
  readonly stored: (batch: B) => ObservableInput<unknown>;
  /** The proxy refused it as too large: replace it by smaller parts, durably. */
  readonly split: (batch: B, error: unknown) => ObservableInput<unknown>;
  /** ClickHouse refused its data: set it aside with the error. */
  readonly quarantine: (batch: B, error: unknown) => ObservableInput<unknown>;
}

/**
 * Settles each insert outcome against the spool, in order: delete after ack, split, or quarantine.
 *
 * <span class="informal">A `concatMap` over the handler for each outcome's `kind`; the outcome
 * is re-emitted once the spool reflects it.</span>
 *
 * `stored` removes the batch (only ever after a 2xx: a batch leaves the spool once
 * ClickHouse has stored it), `split` replaces it durably by smaller parts after a 413,
 * `quarantine` sets it aside with the error after ClickHouse refused its data. A handler that fails errors the stream: the batch stays in the
 * spool and is sent again by the next run, with the same token.
 *
 * ```
 * outcomes:  -s-p-q-|     s stored, p split, q quarantine; each settle takes 1 frame
 * result:    --s-p-q|
 * ```
 *
 * @param config `stored`, `split` and `quarantine`: what to do with the spool for each outcome.
 * @returns An operator that re-emits each `InsertOutcome`, in order, once it is settled.
 * @see {@link pacedInsert} which produces the outcomes.
 *
 * @example
 * ```ts
 * import { acknowledgeBatches, pacedInsert, ProxySlots } from 'http-log-anonymizer';
 *
 * const slots = new ProxySlots({ minIntervalMs: 60_000 });
 * spool.pending().pipe(
 *   pacedInsert({ send: (batch) => sendToClickHouse(batch), slots }),
 *   acknowledgeBatches({
 *     stored: (batch) => spool.remove(batch),
 *     split: (batch) => splitInHalves(batch),
 *     quarantine: (batch, error) => spool.quarantine(batch, { code: 'bad-data', message: String(error) }),
 *   }),
 * );
 * ```
 */
export function acknowledgeBatches<B>(config: AcknowledgeBatchesConfig<B>): OperatorFunction<InsertOutcome<B>, InsertOutcome<B>> {
  return awaitEach(
    (outcome: InsertOutcome<B>) =>
      outcome.kind === 'stored' ? config.stored(outcome.batch) : outcome.kind === 'split' ? config.split(outcome.batch, outcome.error) : config.quarantine(outcome.batch, outcome.error),
    (outcome) => outcome,
  );
}
