import { from, Observable, type ObservableInput, type OperatorFunction, type Subscriber, type Subscription } from 'rxjs';
import { BodyFitSearch, type BodyFitPolicy } from '../domain/bodyFit.ts';
import type { OffsetChunk, PreparedBody, RowBatch, SealReason } from '../domain/batch.ts';
import { OpenBatch } from '../domain/openBatch.ts';

export interface SealBatchesConfig<T> {
  /**
   * Seal the open batch now. Fires when the proxy can take a request and nothing sealed
   * is waiting for it (the pipeline passes its seal trigger, `sealNow$`). An emission with
   * an empty open batch does nothing.
   */
  readonly proxyReady$: Observable<unknown>;
  /**
   * Seal before the open batch's estimated size would pass this, in bytes (the unit of
   * `sizeOf`). A function is read again for every batch. Default: no cap (with `fit`, the
   * measured body decides).
   */
  readonly maxBytes?: number | (() => number);
  /** The estimated encoded size of one item, in bytes. */
  readonly sizeOf: (item: T) => number;
  /**
   * Seal at this many rows whatever their size. Keeps a batch of very compressible rows
   * from growing past what the source lets be outstanding (it would wait for a commit that
   * waits for the batch). Default: no limit.
   */
  readonly maxRows?: number;
  /**
   * Fill each body to within `floor` of `limit`, never over: estimate the compressed size
   * as rows arrive (Σ sizeOf × the ratio the last measurement showed), and when the
   * estimate reaches the aim, measure the real body (`measure`: encode + compress, off the
   * event loop) and seal exactly the rows whose body fits. Rows keep arriving while a
   * measurement runs; the sealed batch carries the measured body (`prepared`), so nothing
   * is compressed twice. Needs per-row offsets (`itemOffsets`) to seal part of the open
   * batch; without them the whole open batch is sealed as measured.
   */
  readonly fit?: SealFit<T>;
}

export interface SealFit<T> extends BodyFitPolicy {
  readonly measure: (rows: readonly T[]) => ObservableInput<PreparedBody>;
  /** Compressed bytes per `sizeOf` byte assumed before the first measurement. Default 0.5. */
  readonly initialRatio?: number;
  /** Measurements per body before the fullest fitting one is sent as it is. Default 8. */
  readonly maxAttempts?: number;
  /** Told about every measurement: rows, body bytes and what was decided. */
  readonly onMeasured?: (rows: number, bodyBytes: number, verdict: string) => void;
}

/**
 * Gathers the rows of incoming chunks into batches, sealed when the proxy is ready for
 * one, when the body is full, or when the input ends.
 *
 * A batch claims the offsets of what it holds, so committing them after it is durable
 * never runs ahead of the data, and never leaves rows it holds to be read again. When the
 * cap splits a chunk, each part claims the offset of its last row if the chunk carries
 * `itemOffsets`; without them, only the part holding the chunk's end claims it.
 *
 * ```
 * chunks:      -a-b-c---d-|     (one row each, maxBytes 2)
 * proxyReady$: -------r--------
 * result:      -----x-y---z|    x=[a,b] (size), y=[c] (proxy-ready), z=[d] (end-of-input)
 * ```
 *
 * With `fit`, a full body is found by measuring (m: a measurement of the open rows that
 * takes two frames; here [a,b,c] measure over the limit and [a,b] fit):
 * ```
 * chunks:   -a-b-c-d-|
 * measured:      m-m-       ([a,b,c] too big → [a,b])
 * result:   ---------(x y|) x=[a,b] (size, with its body), y=[c,d] (end-of-input)
 * ```
 *
 * @example
 * rows$.pipe(sealBatches({
 *   proxyReady$: slots.ready$,
 *   sizeOf: nativeRowSize,
 *   fit: { limit: 1 << 20, measure: (rows) => bodyOf(rows) },
 * }))
 */
export function sealBatches<T>(config: SealBatchesConfig<T>): OperatorFunction<OffsetChunk<T>, RowBatch<T>> {
  return (source) =>
    new Observable<RowBatch<T>>((subscriber) => {
      const sealer = new Sealer(config, subscriber);
      const guarded = sealer.guarded;
      const fail = (error: unknown): void => subscriber.error(error);
      const readySubscription = config.proxyReady$.subscribe({ next: guarded(() => sealer.proxyReady()), error: fail });
      const sourceSubscription = source.subscribe({ next: guarded((chunk: OffsetChunk<T>) => sealer.chunk(chunk)), error: fail, complete: guarded(() => sealer.end()) });
      return () => {
        sealer.cancel();
        readySubscription.unsubscribe();
        sourceSubscription.unsubscribe();
      };
    });
}

/** One subscription's state: the open batch, the body-fit search, the measurement running. */
class Sealer<T> {
  /**
   * Every callback (sizeOf, measure, onMeasured) runs inside a guarded handler: what one
   * throws must reach subscriber.error, not RxJS's unhandled-error path (a crash that
   * skips the pipeline's own shutdown).
   */
  readonly guarded = <A extends unknown[]>(handler: (...args: A) => void) =>
    (...args: A): void => {
      try {
        handler(...args);
      } catch (error) {
        this.#subscriber.error(error);
      }
    };
  readonly #config: SealBatchesConfig<T>;
  readonly #subscriber: Subscriber<RowBatch<T>>;
  readonly #fit: SealFit<T> | undefined;
  readonly #open = new OpenBatch<T>();
  readonly #search: BodyFitSearch | undefined;
  readonly #maxRows: number;
  #cap: number;
  #measuring: Subscription | undefined;
  /** The input has ended: finish fitting what is open into full bodies, then complete. */
  #ending = false;

  constructor(config: SealBatchesConfig<T>, subscriber: Subscriber<RowBatch<T>>) {
    this.#config = config;
    this.#subscriber = subscriber;
    this.#fit = config.fit;
    this.#search = config.fit ? new BodyFitSearch(config.fit) : undefined;
    this.#maxRows = config.maxRows ?? Number.POSITIVE_INFINITY;
    this.#cap = this.#capOf();
  }

  #capOf(): number {
    const { maxBytes } = this.#config;
    return maxBytes === undefined ? Number.POSITIVE_INFINITY : typeof maxBytes === 'function' ? maxBytes() : maxBytes;
  }

  /** Seals the first `count` open rows (all of them by default); the rest stay open. */
  #seal(reason: SealReason, count?: number, prepared?: PreparedBody): void {
    const batch = this.#open.take(reason, count, prepared);
    if (batch === undefined) return;
    this.cancel();
    this.#search?.reset();
    this.#cap = this.#capOf();
    this.#subscriber.next(batch);
  }

  /** Stops the measurement running, if any. */
  cancel(): void {
    this.#measuring?.unsubscribe();
    this.#measuring = undefined;
  }

  #measure(count: number): void {
    const fit = this.#fit;
    if (!fit || !this.#search) return;
    this.#search.started();
    const estimatedBytes = this.#open.bytesOf(count);
    let settled = false;
    const subscription = from(fit.measure(this.#open.rows(count))).subscribe({
      next: this.guarded((prepared: PreparedBody) => {
        if (settled) return;
        settled = true;
        this.#measuring = undefined;
        this.#measured(count, estimatedBytes, prepared);
      }),
      error: (error: unknown) => this.#subscriber.error(error),
      complete: () => {
        if (!settled) this.#subscriber.error(new Error('measure completed without a body'));
      },
    });
    if (!settled) this.#measuring = subscription;
  }

  #measured(count: number, estimatedBytes: number, prepared: PreparedBody): void {
    const { verdict, decision } = this.#search!.measured(count, estimatedBytes, prepared, { rows: this.#open.length, ending: this.#ending });
    this.#fit!.onMeasured?.(count, prepared.body.byteLength, verdict);
    switch (decision.kind) {
      case 'too-large':
        this.#subscriber.error(new RangeError(`one row compresses to ${decision.bytes} bytes, over the proxy's body limit of ${this.#fit!.limit}`));
        return;
      case 'measure':
        this.#measure(decision.count);
        return;
      case 'wait':
        return;
      case 'seal':
        this.#seal(decision.reason, decision.count, decision.prepared);
        break;
      case 'none':
        break;
    }
    this.#considerMeasuring();
    this.#finishIfEnding();
  }

  /** Rows that make `body` bytes of compressed body, by the current estimate. */
  #countForBody(body: number): number {
    return this.#open.countFor(this.#search!.estimatedFor(body));
  }

  /**
   * After rows arrive or a batch is sealed: measure if the open rows look full. Only the
   * rows one body should hold are measured, however many are open (a backlog can open
   * many bodies' worth while a measurement runs).
   */
  #considerMeasuring(): void {
    const search = this.#search;
    if (!search || this.#measuring !== undefined || this.#open.length === 0) return;
    const waitingFor = search.waitingFor;
    if (waitingFor !== undefined) {
      if (this.#open.length >= waitingFor) this.#measure(waitingFor);
      return;
    }
    if (search.estimate(this.#open.bytes) >= search.aimBytes) this.#measure(this.#countForBody(search.aimBytes));
  }

  /** At the end of input: once no measurement runs and what is open fits one body, seal it and complete. */
  #finishIfEnding(): void {
    if (!this.#ending || this.#measuring !== undefined || this.#subscriber.closed) return;
    const search = this.#search;
    if (search && this.#open.length > 0 && search.estimate(this.#open.bytes) > search.limit) {
      // Still more than one body open: fit the next one first (#measured comes back here).
      this.#measure(this.#countForBody(search.aimBytes));
      return;
    }
    this.#seal('end-of-input');
    this.#subscriber.complete();
  }

  proxyReady(): void {
    if (this.#measuring !== undefined) {
      this.#search?.proxyReady();
      return;
    }
    // Everything open, unless it no longer fits: then the fullest body measured.
    const search = this.#search;
    const best = search?.best;
    if (search && best !== undefined && search.estimate(this.#open.bytes) > search.limit) this.#seal('proxy-ready', best.count, best.prepared);
    else this.#seal('proxy-ready');
  }

  chunk(chunk: OffsetChunk<T>): void {
    const open = this.#open;
    // After a rebalance the consumer reads again from the committed offsets, and a
    // batch of the old generation will be refused at commit: never let it take rows of
    // the new generation with it.
    if (chunk.generation !== undefined && open.generation !== undefined && chunk.generation !== open.generation) this.#seal('rebalance');
    open.beginChunk(chunk);
    chunk.items.forEach((item, index) => {
      const size = this.#config.sizeOf(item);
      // With `fit`, fullness is judged by measuring (#considerMeasuring, below); the
      // estimate cap and the row cap still hold while no measurement is running.
      if (open.length > 0 && this.#measuring === undefined && (open.bytes + size > this.#cap || open.length >= this.#maxRows)) this.#seal('size');
      open.add(item, size, chunk, chunk.itemOffsets?.[index]);
    });
    open.endChunk(chunk);
    this.#considerMeasuring();
  }

  /** Rows open past one body are fitted into full bodies first; the last one takes the rest (and the encoder splits it, should the estimate have been short). */
  end(): void {
    this.#ending = true;
    this.#search?.ended();
    this.#finishIfEnding();
  }
}
