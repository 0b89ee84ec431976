import { from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import { DEFAULT_FIT_AIM, judgeFit, type BodyFitPolicy } from '../domain/bodyFit.ts';
import { mergeOffsets, type OffsetChunk, type PreparedBody, type RowBatch, type SealReason } from '../domain/batch.ts';

export interface SealBatchesConfig<T> {
  /**
   * Seal the open batch now. Fires when the proxy can take a request and nothing sealed
   * is waiting for it (the design card's "proxy-ready timer"). An emission with an empty
   * open batch does nothing.
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
  type Batch = RowBatch<T>;
  return (source) =>
    new Observable<Batch>((subscriber) => {
      // Every callback (sizeOf, measure, onMeasured) runs inside these handlers: what one
      // throws must reach subscriber.error, not RxJS's unhandled-error path (a crash that
      // skips the pipeline's own shutdown).
      const guarded =
        <A extends unknown[]>(handler: (...args: A) => void) =>
        (...args: A): void => {
          try {
            handler(...args);
          } catch (error) {
            subscriber.error(error);
          }
        };

      const fit = config.fit;
      let rows: T[] = [];
      let sizes: number[] = [];
      let bytes = 0;
      let offsets = new Map<number, number>();
      let generation: number | undefined;
      let rowPartitions: number[] = [];
      let rowOffsetValues: number[] = [];
      // Row offsets are kept only while every chunk so far carried them.
      let rowOffsetsKnown = true;
      const capOf = (): number =>
        config.maxBytes === undefined ? Number.POSITIVE_INFINITY : typeof config.maxBytes === 'function' ? config.maxBytes() : config.maxBytes;
      let cap = capOf();
      const maxRows = config.maxRows ?? Number.POSITIVE_INFINITY;

      // --- fitting state (only with `fit`) ---
      // Compressed bytes per estimated byte, learned from every measurement.
      let ratio = fit?.initialRatio ?? 0.5;
      let measuring: Subscription | undefined;
      // A measurement asked for more rows than are open: measure again once this many are.
      let measureAt: number | undefined;
      let attempts = 0;
      // The largest measured prefix whose body fits, in case growing it never reaches the floor.
      let best: { count: number; prepared: PreparedBody } | undefined;
      // The smallest measured prefix whose body is over the limit: with `best`, it brackets the answer.
      let over: { count: number; bytes: number } | undefined;
      // Counts measured for the open body, and how many neighbours of a bracket were tried.
      let tried = new Set<number>();
      let probes = 0;
      // The proxy became ready while a measurement ran: send what fits as soon as it is known.
      let readyWhileMeasuring = false;
      // The input has ended: finish fitting what is open into full bodies, then complete.
      let ending = false;

      const resetFit = (): void => {
        measuring?.unsubscribe();
        measuring = undefined;
        measureAt = undefined;
        attempts = 0;
        best = undefined;
        over = undefined;
        tried = new Set();
        probes = 0;
        readyWhileMeasuring = false;
      };

      /** Seals the first `count` open rows (all of them by default); the rest stay open. */
      const seal = (reason: SealReason, count = rows.length, prepared?: PreparedBody): void => {
        if (rows.length === 0 && offsets.size === 0) return;
        const whole = count >= rows.length;
        if (!whole && !rowOffsetsKnown) {
          // Without per-row offsets part of a batch cannot claim its rows: send it all.
          seal(reason);
          return;
        }
        const takenRows = rows.slice(0, count);
        let claimed: Map<number, number> = offsets;
        if (!whole) {
          claimed = new Map();
          for (let i = 0; i < count; i++) mergeOffsets(claimed, rowPartitions[i]!, rowOffsetValues[i]!);
        }
        const batch: Batch = {
          rows: takenRows,
          offsets: claimed,
          reason,
          ...(generation === undefined ? {} : { generation }),
          ...(rowOffsetsKnown && takenRows.length > 0
            ? { rowOffsets: { partitions: rowPartitions.slice(0, count), offsets: rowOffsetValues.slice(0, count) } }
            : {}),
          ...(prepared === undefined ? {} : { prepared }),
        };
        if (whole) {
          rows = [];
          sizes = [];
          bytes = 0;
          offsets = new Map();
          generation = undefined;
          rowPartitions = [];
          rowOffsetValues = [];
          rowOffsetsKnown = true;
        } else {
          // The rest keeps the open batch's whole span: it holds every row after the part.
          rows = rows.slice(count);
          sizes = sizes.slice(count);
          bytes = sizes.reduce((sum, size) => sum + size, 0);
          rowPartitions = rowPartitions.slice(count);
          rowOffsetValues = rowOffsetValues.slice(count);
        }
        resetFit();
        cap = capOf();
        subscriber.next(batch);
      };

      const estimatedBody = (): number => bytes * ratio;

      const measure = (count: number): void => {
        if (!fit) return;
        attempts++;
        measureAt = undefined;
        const measuredBytes = sizes.slice(0, count).reduce((sum, size) => sum + size, 0);
        let settled = false;
        const subscription = from(fit.measure(rows.slice(0, count))).subscribe({
          next: guarded((prepared: PreparedBody) => {
            if (settled) return;
            settled = true;
            measuring = undefined;
            onMeasured(count, measuredBytes, prepared);
          }),
          error: (error: unknown) => subscriber.error(error),
          complete: () => {
            if (!settled) subscriber.error(new Error('measure completed without a body'));
          },
        });
        if (!settled) measuring = subscription;
      };

      const onMeasured = (count: number, measuredBytes: number, prepared: PreparedBody): void => {
        if (!fit) return;
        const bodyBytes = prepared.body.byteLength;
        if (measuredBytes > 0) ratio = bodyBytes / measuredBytes;
        const verdict = judgeFit(fit, count, bodyBytes);
        fit.onMeasured?.(count, bodyBytes, verdict.kind);
        tried.add(count);
        // The fullest body that fits (bytes are not monotonic in rows: a count can beat a larger one).
        if (bodyBytes <= fit.limit && (best === undefined || bodyBytes > best.prepared.body.byteLength)) best = { count, prepared };
        if (bodyBytes > fit.limit && (over === undefined || count < over.count)) over = { count, bytes: bodyBytes };
        const next = verdict.kind === 'shrink' || verdict.kind === 'grow' ? nextCount(verdict.count) : undefined;
        if (next === 'bracketed') {
          // No row count between the fullest fitting body and the smallest one over: send it.
          seal(readyWhileMeasuring ? 'proxy-ready' : 'size', best!.count, best!.prepared);
          considerMeasuring();
          finishIfEnding();
          return;
        }
        switch (verdict.kind) {
          case 'fits':
            seal('size', count, prepared);
            break;
          case 'too-large':
            subscriber.error(new RangeError(`one row compresses to ${bodyBytes} bytes, over the proxy's body limit of ${fit.limit}`));
            return;
          case 'shrink':
            measure(next as number);
            return;
          case 'grow':
            if (attempts >= (fit.maxAttempts ?? 8)) {
              // Growing keeps missing the window: send the fullest body measured.
              seal(readyWhileMeasuring ? 'proxy-ready' : 'size', best!.count, best!.prepared);
              break;
            }
            if (rows.length >= (next as number)) {
              // Enough rows are open to fill it: measure them, even if the proxy is waiting.
              measure(next as number);
              return;
            }
            if (readyWhileMeasuring) {
              // The proxy is waiting and no more rows are open: send the fullest body measured.
              seal('proxy-ready', best!.count, best!.prepared);
              break;
            }
            // The input has ended and all that is open fits one body: finishIfEnding seals it.
            if (ending) break;
            measureAt = next as number;
            return;
        }
        considerMeasuring();
        finishIfEnding();
      };

      /**
       * The next row count to measure. Bytes grow with rows in steps, not on a line (a chunk of
       * another partition, a codec block boundary): once a count that fits and one that does
       * not are known, interpolate between them rather than from zero, and stop when no count
       * lies between them.
       */
      const nextCount = (proportional: number): number | 'bracketed' => {
        if (!fit || best === undefined || over === undefined || over.count <= best.count) return proportional;
        if (over.count - best.count <= 1) {
          // Adjacent counts straddle the window. A compressor's output jumps by a few percent
          // from one row to the next on small bodies, so a neighbour may land inside it: try a
          // few (one fewer than the fullest fitting, one more than the oversize, …).
          while (attempts < (fit.maxAttempts ?? 8) && probes < 6) {
            probes++;
            const step = Math.ceil(probes / 2);
            const count = probes % 2 === 1 ? best.count - step : over.count + step;
            if (count >= 1 && count <= rows.length && !tried.has(count)) return count;
          }
          return 'bracketed';
        }
        const target = (fit.aim ?? DEFAULT_FIT_AIM) * fit.limit;
        const bestBytes = best.prepared.body.byteLength;
        const slope = (over.bytes - bestBytes) / (over.count - best.count);
        const guess = best.count + Math.round((target - bestBytes) / Math.max(slope, 1e-9));
        return Math.min(over.count - 1, Math.max(best.count + 1, guess));
      };

      /** How many of the open rows the estimate says make `targetBytes` of body (at least 1). */
      const rowsForBody = (targetBytes: number): number => {
        const targetEstimate = targetBytes / ratio;
        let sum = 0;
        for (let i = 0; i < sizes.length; i++) {
          sum += sizes[i]!;
          if (sum >= targetEstimate) return i + 1;
        }
        return sizes.length;
      };

      /**
       * After rows arrive or a batch is sealed: measure if the open rows look full. Only the
       * rows one body should hold are measured, however many are open (a backlog can open
       * many bodies' worth while a measurement runs).
       */
      const considerMeasuring = (): void => {
        if (!fit || measuring !== undefined || rows.length === 0) return;
        if (measureAt !== undefined) {
          if (rows.length >= measureAt) measure(measureAt);
          return;
        }
        const aimBytes = (fit.aim ?? DEFAULT_FIT_AIM) * fit.limit;
        if (estimatedBody() >= aimBytes) measure(rowsForBody(aimBytes));
      };

      /** At the end of input: once no measurement runs and what is open fits one body, seal it and complete. */
      const finishIfEnding = (): void => {
        if (!ending || measuring !== undefined || subscriber.closed) return;
        if (fit && rows.length > 0 && estimatedBody() > fit.limit) {
          // Still more than one body open: fit the next one first (onMeasured comes back here).
          measure(rowsForBody((fit.aim ?? DEFAULT_FIT_AIM) * fit.limit));
          return;
        }
        seal('end-of-input');
        subscriber.complete();
      };

      const onProxyReady = (): void => {
        if (measuring !== undefined) {
          readyWhileMeasuring = true;
          return;
        }
        // Everything open, unless it no longer fits: then the fullest body measured.
        if (fit && best !== undefined && estimatedBody() > fit.limit) seal('proxy-ready', best.count, best.prepared);
        else seal('proxy-ready');
      };

      const readySubscription = config.proxyReady$.subscribe({
        next: guarded(onProxyReady),
        error: (error: unknown) => subscriber.error(error),
      });

      const sourceSubscription = source.subscribe({
        next: guarded((chunk: OffsetChunk<T>) => {
          // After a rebalance the consumer reads again from the committed offsets, and a
          // batch of the old generation will be refused at commit: never let it take rows of
          // the new generation with it.
          if (chunk.generation !== undefined && generation !== undefined && chunk.generation !== generation) seal('rebalance');
          if (chunk.generation !== undefined) generation = chunk.generation;
          if (chunk.itemOffsets === undefined && chunk.items.length > 0) rowOffsetsKnown = false;
          chunk.items.forEach((item, index) => {
            const size = config.sizeOf(item);
            // With `fit`, fullness is judged by measuring (considerMeasuring, below); the
            // estimate cap and the row cap still hold while no measurement is running.
            if (rows.length > 0 && measuring === undefined && (bytes + size > cap || rows.length >= maxRows)) seal('size');
            if (chunk.generation !== undefined) generation = chunk.generation;
            rows.push(item);
            sizes.push(size);
            bytes += size;
            const offset = chunk.itemOffsets?.[index];
            if (offset !== undefined) {
              rowPartitions.push(chunk.partition);
              rowOffsetValues.push(offset);
              mergeOffsets(offsets, chunk.partition, offset);
            } else if (rows.length === 1) {
              // A new batch that starts inside a chunk without item offsets.
              rowOffsetsKnown = false;
            }
          });
          mergeOffsets(offsets, chunk.partition, chunk.lastOffset);
          considerMeasuring();
        }),
        error: (error: unknown) => subscriber.error(error),
        complete: guarded(() => {
          // Rows open past one body are fitted into full bodies first; the last one takes
          // the rest (and the encoder splits it, should the estimate have been short).
          ending = true;
          measureAt = undefined;
          finishIfEnding();
        }),
      });

      return () => {
        measuring?.unsubscribe();
        readySubscription.unsubscribe();
        sourceSubscription.unsubscribe();
      };
    });
}
