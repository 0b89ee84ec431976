/**
 * When the next request may go through the proxy, as state that flows.
 *
 * The proxy (nginx `limit_req`, no burst) lets one request per interval through per
 * client address and answers 503 to the rest. A 503 does not reset its clock, so after
 * one the right move is to wait for the slot we already know of, not to back off blindly.
 * Every request that reached ClickHouse, successful or not, used up a slot; a 503 or a
 * refused connection did not.
 *
 * Instances that share one client address share that budget. Alone, each would see the
 * others' requests only as 503s, probe, and waste most of its tries (docs/architecture.md,
 * "Instances on one address"). Given a shared slot ledger (`shared`, PROXY_SLOT_DIR), an
 * instance also waits, after its own interval, until it has claimed the next slot in the
 * ledger (src/pacing/sharedSlot.ts decides; src/io/slotDir.ts is the directory).
 *
 * Not domain code: it holds the pacing state and runs timers. Its state is an observable
 * (`state$`), and `idle$` (a slot is open and no batch waits for it) is derived from it
 * with one timer per change, not by polling.
 */
import { asyncScheduler, BehaviorSubject, concatMap, defer, distinctUntilChanged, map, of, switchMap, timer, concat, filter, type Observable, type SchedulerLike } from 'rxjs';
import { decideSharedSlot, slotDelay, type SlotLedger } from './sharedSlot.ts';

/** Pacing shared with the other instances on one address, through a slot ledger. */
export interface SharedSlotsConfig {
  /** The ledger the instances on this address share (src/io/slotDir.ts). */
  readonly ledger: SlotLedger;
  /** This instance's id in the ledger: unique per process. */
  readonly owner: string;
  /** The most each wait on the ledger adds to the period, in ms, so that no instance always wins (`slotDelay`). Default: margin / 4. */
  readonly jitterMs?: number;
  /** Draws in [0, 1) for that delay. Default `Math.random`; seeded in tests. */
  readonly random?: () => number;
  /** Told when the ledger could not be read or written; that request is paced on its own, as without a ledger. */
  readonly onError?: (error: unknown) => void;
}

/** After losing this many claims in a row without waiting, wait a probe delay before reading the ledger again. */
const MAX_IMMEDIATE_RETRIES = 3;

export interface ProxySlotsConfig {
  /** The proxy's interval between accepted requests, in ms. Default 60 000 (nginx `rate=1r/m`). */
  readonly minIntervalMs?: number;
  /**
   * Added to every interval, in ms. Default 3 000: nginx stores `limit_req` rates in whole
   * milli-requests per second, so `rate=1r/m` (16.67) becomes 16 and really lets one
   * request through per 62.5 s; the rest absorbs clock granularity.
   */
  readonly marginMs?: number;
  /**
   * After a request that used no slot but whose slot we can't predict (a 503 when we
   * thought the slot was open: another process on this host shares the budget), try again
   * after this many ms. A rejected attempt costs the proxy nothing. Default: interval / 10.
   */
  readonly probeMs?: number;
  /** Shared pacing with the other instances on this address. Default: none, this instance paces alone. */
  readonly shared?: SharedSlotsConfig;
  readonly scheduler?: SchedulerLike;
}

/** The pacing state: when the next request may go, and how many batches wait for (or use) a slot. */
export interface SlotState {
  /** Scheduler time (ms) from which the next request may go. */
  readonly nextAt: number;
  readonly waiting: number;
}

export class ProxySlots {
  readonly minIntervalMs: number;
  readonly marginMs: number;
  readonly probeMs: number;
  readonly scheduler: SchedulerLike;
  /** The pacing state; emits the current state on subscription, then every change. */
  readonly state$: Observable<SlotState>;
  /**
   * True while a slot is open and no batch is waiting for it (time to seal the open
   * batch), false otherwise; emits on every change, and the current value on subscription.
   */
  readonly idle$: Observable<boolean>;
  /** Fires each time the proxy becomes idle: `idle$`'s rising edges. */
  readonly ready$: Observable<true>;
  readonly #state: BehaviorSubject<SlotState>;
  readonly #shared: Required<SharedSlotsConfig> | undefined;

  constructor(config: ProxySlotsConfig = {}) {
    this.minIntervalMs = config.minIntervalMs ?? 60_000;
    this.marginMs = config.marginMs ?? 3_000;
    this.probeMs = config.probeMs ?? Math.max(1, Math.round(this.minIntervalMs / 10));
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.#shared = config.shared && {
      jitterMs: Math.floor(this.marginMs / 4),
      random: Math.random,
      onError: () => {},
      ...config.shared,
    };
    this.#state = new BehaviorSubject<SlotState>({ nextAt: this.scheduler.now(), waiting: 0 });
    this.state$ = this.#state.asObservable();
    this.idle$ = this.state$.pipe(
      switchMap((state) => {
        if (state.waiting > 0) return of(false);
        const wait = state.nextAt - this.scheduler.now();
        // Closed until nextAt, then open: one timer per state change.
        return wait <= 0 ? of(true) : concat(of(false), timer(wait, this.scheduler).pipe(map(() => true)));
      }),
      distinctUntilChanged(),
    );
    this.ready$ = this.idle$.pipe(filter((idle): idle is true => idle));
  }

  /** Milliseconds until the next request may go; 0 when it may go now. */
  msUntilNext(): number {
    return Math.max(0, this.#state.value.nextAt - this.scheduler.now());
  }

  /** Emits once, when the next request may go: after this instance's own interval and, with a ledger, once it has claimed the slot there. */
  whenOpen(): Observable<number> {
    const own = timer(this.msUntilNext(), this.scheduler);
    const shared = this.#shared;
    return shared ? own.pipe(concatMap(() => this.#claim(shared))) : own;
  }

  /** Reads the ledger until this instance claims the next slot; waits in between as `decideSharedSlot` says. */
  #claim(shared: Required<SharedSlotsConfig>): Observable<number> {
    const periodMs = this.minIntervalMs + this.marginMs;
    return defer(() => {
      // Per latest claim seen: this instance's random delay for it, and how long it has waited on it.
      let seen: number | undefined;
      let delayMs = 0;
      let waitedMs = 0;
      let lost = 0;
      const step = (): Observable<number> =>
        defer(() => {
          const now = this.scheduler.now();
          try {
            const latest = shared.ledger.latest();
            if ((latest?.seq ?? 0) !== seen) {
              seen = latest?.seq ?? 0;
              delayMs = slotDelay(shared.jitterMs, shared.random(), latest?.owner === shared.owner);
              waitedMs = 0;
            }
            const decision = decideSharedSlot({ now, latest, periodMs, delayMs, waitedMs });
            if (decision.kind === 'wait') {
              waitedMs += decision.ms;
              lost = 0;
              // What this instance now knows of the next slot, for the gauge and `idle$`.
              this.#update({ nextAt: Math.max(this.#state.value.nextAt, now + decision.ms) });
              return timer(decision.ms, this.scheduler).pipe(concatMap(step));
            }
            if (shared.ledger.claim(decision.seq, now, shared.owner)) return of(0);
            // Another instance claimed that number a moment ago: the next read shows its claim.
            return ++lost < MAX_IMMEDIATE_RETRIES ? step() : timer(this.probeMs, this.scheduler).pipe(concatMap(step));
          } catch (error) {
            // A full disk, a removed directory: this request goes on our own pacing, as without a ledger.
            shared.onError(error);
            return of(0);
          }
        });
      return step();
    });
  }

  /** A request that reached the upstream, whatever its outcome, started at `startedAt`. */
  used(startedAt: number): void {
    this.#update({ nextAt: Math.max(this.#state.value.nextAt, startedAt + this.minIntervalMs + this.marginMs) });
  }

  /** A request was refused before it used a slot (503 from the proxy, connection refused). */
  notUsed(): void {
    this.#update({ nextAt: Math.max(this.#state.value.nextAt, this.scheduler.now() + this.probeMs) });
  }

  /** A batch is waiting for (or using) a slot; the proxy is not idle until it is done. Pair with `dequeue`. */
  enqueue(): void {
    this.#update({ waiting: this.#state.value.waiting + 1 });
  }

  dequeue(): void {
    this.#update({ waiting: Math.max(0, this.#state.value.waiting - 1) });
  }

  #update(change: Partial<SlotState>): void {
    const next = { ...this.#state.value, ...change };
    if (next.nextAt !== this.#state.value.nextAt || next.waiting !== this.#state.value.waiting) this.#state.next(next);
  }
}
