import { describe, expect, it } from 'vitest';
import type { RunHelpers } from 'rxjs/testing';
import type { SealedBatch } from '../domain/batch.ts';
import { ProxySlots } from '../pacing/proxySlots.ts';
import { BodyTooLargeError, ClickHouseError, NetworkError, ProxyRateLimitedError } from '../errors.ts';
import { concatMap, from, Subject } from 'rxjs';
import type { SlotClaim, SlotLedger } from '../pacing/sharedSlot.ts';
import { DELIVERY_OK, deliveryState } from './deliveryState.ts';
import { pacedInsert, type InsertAttempt, type InsertOutcome } from './pacedInsert.ts';
import { newTestScheduler, sealed } from './testing.ts';

type Cold = RunHelpers['cold'];

/** A proxy stand-in: each call to `send` plays the next scripted response. */
function scripted(cold: Cold, responses: Array<string | [string, unknown]>) {
  const calls: string[] = [];
  const send = (batch: SealedBatch) => {
    calls.push(batch.token);
    const next = responses.shift() ?? '-|';
    return typeof next === 'string' ? cold(next) : cold(next[0], undefined, next[1]);
  };
  return { send, calls };
}

const a = sealed('a', 1, [[0, 1]]);
const b = sealed('b', 1, [[0, 2]]);
const c = sealed('c', 1, [[0, 3]]);
const stored = (batch: SealedBatch): InsertOutcome<SealedBatch> => ({ batch, kind: 'stored' });

describe('pacedInsert', () => {
  it('sends one batch per slot, in order: a backlog drains one per interval', () => {
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler });
      const proxy = scripted(cold as Cold, []);
      const source = cold('(abc|)', { a, b, c });
      // Each request takes 1 frame; the next may start 10 frames after the previous one started.
      expectObservable(source.pipe(pacedInsert({ send: proxy.send, slots }))).toBe('-a---------b---------(c|)', { a: stored(a), b: stored(b), c: stored(c) });
    });
  });

  it('a 503 uses no slot: it tries again after the probe delay, not a whole interval', () => {
    const scheduler = newTestScheduler();
    const failures: string[] = [];
    let proxy!: ReturnType<typeof scripted>;
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, probeMs: 3, scheduler });
      proxy = scripted(cold as Cold, [['-#', new ProxyRateLimitedError()], '-|']);
      const source = cold('a|', { a });
      // Refused at 1, retried at 1 + 3 = 4, stored at 5.
      expectObservable(source.pipe(pacedInsert({ send: proxy.send, slots, onFailure: (_b, _e, action) => failures.push(action) }))).toBe('-----(a|)', { a: stored(a) });
    });
    expect(proxy.calls).toEqual(['a', 'a']);
    expect(failures).toEqual(['retry']);
  });

  it('a 5xx or a reset used the slot: the retry waits for the next interval, with the same batch', () => {
    const scheduler = newTestScheduler();
    let proxy!: ReturnType<typeof scripted>;
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 2, scheduler });
      proxy = scripted(cold as Cold, [
        ['--#', new ClickHouseError('HTTP 502', 502, undefined)],
        ['-#', new NetworkError('reset', false)],
        '-|',
      ]);
      const source = cold('a|', { a });
      // Attempts start at 0, 12 and 24 (interval 10 + margin 2); the third succeeds at 25.
      expectObservable(source.pipe(pacedInsert({ send: proxy.send, slots }))).toBe('-------------------------(a|)', { a: stored(a) });
    });
    expect(proxy.calls).toEqual(['a', 'a', 'a']);
  });

  it('a refused connection used no slot either', () => {
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, probeMs: 2, scheduler });
      const proxy = scripted(cold as Cold, [['#', new NetworkError('refused', true)], '-|']);
      expectObservable(cold('a|', { a }).pipe(pacedInsert({ send: proxy.send, slots }))).toBe('---(a|)', { a: stored(a) });
    });
  });

  it('bad data comes out as quarantine, and the next batch goes at the next slot', () => {
    const scheduler = newTestScheduler();
    let proxy!: ReturnType<typeof scripted>;
    const dataError = new ClickHouseError('Code: 27. DB::Exception: Cannot parse input', 500, 27);
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler });
      proxy = scripted(cold as Cold, [['-#', dataError], '-|']);
      const source = cold('(ab|)', { a, b });
      expectObservable(source.pipe(pacedInsert({ send: proxy.send, slots }))).toBe('-q---------(b|)', { q: { batch: a, kind: 'quarantine', error: dataError }, b: stored(b) });
    });
    expect(proxy.calls).toEqual(['a', 'b']);
  });

  it('a 413 comes out as split, used no slot, and the next batch goes soon after', () => {
    const scheduler = newTestScheduler();
    const tooLarge = new BodyTooLargeError();
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, probeMs: 2, scheduler });
      const proxy = scripted(cold as Cold, [['-#', tooLarge], '-|']);
      expectObservable(cold('(ab|)', { a, b }).pipe(pacedInsert({ send: proxy.send, slots }))).toBe('-s--(b|)', { s: { batch: a, kind: 'split', error: tooLarge }, b: stored(b) });
    });
  });

  it('delivery blocked (bad credentials): the batch stays at the head, is retried once per slot, unblocks, the next batch follows', () => {
    const scheduler = newTestScheduler();
    let proxy!: ReturnType<typeof scripted>;
    const attempts: Array<[string, string, string | undefined, number]> = [];
    const denied = new ClickHouseError('Code: 516. DB::Exception: default: Authentication failed', 403, 516);
    const onAttempt = (attempt: InsertAttempt<SealedBatch>) => attempts.push([attempt.batch.token, attempt.action, attempt.reason, attempt.at]);
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, probeMs: 2, scheduler });
      proxy = scripted(cold as Cold, [['-#', denied], ['-#', denied], '-|', '-|']);
      const source = cold('(ab|)', { a, b });
      // a fails at 1 and 11 (each used its slot), is stored at 21; b goes at the next slot, 30.
      expectObservable(source.pipe(pacedInsert({ send: proxy.send, slots, onAttempt }))).toBe('---------------------a---------(b|)', { a: stored(a), b: stored(b) });
      expectSubscriptions(source.subscriptions).toBe('(^!)');
    });
    expect(proxy.calls).toEqual(['a', 'a', 'a', 'b']);
    expect(attempts).toEqual([
      ['a', 'blocked', 'authentication', 1],
      ['a', 'blocked', 'authentication', 11],
      ['a', 'stored', undefined, 21],
      ['b', 'stored', undefined, 31],
    ]);
  });

  it('the attempts it reports give the delivery state: ok, blocked while the table is missing, ok again', () => {
    const scheduler = newTestScheduler();
    const unknownTable = new ClickHouseError('Code: 60. DB::Exception: Unknown table', 404, 60);
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, probeMs: 2, scheduler });
      const proxy = scripted(cold as Cold, [['-#', unknownTable], ['-#', new ProxyRateLimitedError()], ['-#', unknownTable], '-|', '-|']);
      const attempts = new Subject<InsertAttempt<SealedBatch>>();
      const states = attempts.pipe(deliveryState());
      // 60 at 1 (blocked since 1); a 503 at 11 leaves it blocked (no slot: retried at 13);
      // 60 again at 14 (same state); stored at 24: ok; b at 34.
      expectObservable(states).toBe('oB----------------------o', { o: DELIVERY_OK, B: { kind: 'blocked', reason: 'unknown_table', since: 1, message: unknownTable.message } });
      expectObservable(cold('(ab|)', { a, b }).pipe(pacedInsert({ send: proxy.send, slots, onAttempt: (attempt) => attempts.next(attempt) }))).toBe('------------------------a---------(b|)', { a: stored(a), b: stored(b) });
    });
  });

  it('a fatal failure (not an answer: a bug, an unreadable body) errors the stream, and nothing after it is sent', () => {
    const scheduler = newTestScheduler();
    let proxy!: ReturnType<typeof scripted>;
    const bug = new TypeError('boom');
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler });
      proxy = scripted(cold as Cold, [['-#', bug]]);
      const source = cold('(ab)', { a, b });
      expectObservable(source.pipe(pacedInsert({ send: proxy.send, slots }))).toBe('-#', undefined, bug);
      expectSubscriptions(source.subscriptions).toBe('^!');
    });
    expect(proxy.calls).toEqual(['a']);
  });

  it('an exception in a hook reaches the subscriber as an error', () => {
    const scheduler = newTestScheduler();
    const thrown = new Error('hook');
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler });
      const proxy = scripted(cold as Cold, [['-#', new ClickHouseError('Code: 60', 404, 60)]]);
      const onAttempt = () => {
        throw thrown;
      };
      expectObservable(cold('a', { a }).pipe(pacedInsert({ send: proxy.send, slots, onAttempt }))).toBe('-#', undefined, thrown);
    });
  });

  it('a batch without rows passes in order without a request', () => {
    const scheduler = newTestScheduler();
    let proxy!: ReturnType<typeof scripted>;
    const empty = sealed('empty', 0, [[0, 7]]);
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler });
      proxy = scripted(cold as Cold, ['---|']);
      expectObservable(cold('(ae|)', { a, e: empty }).pipe(pacedInsert({ send: proxy.send, slots }))).toBe('---(ae|)', { a: stored(a), e: stored(empty) });
    });
    expect(proxy.calls).toEqual(['a']);
  });

  it('idle$ is false while a batch waits or the slot is closed, true once it is open and idle; ready$ fires on each rise', () => {
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 6, marginMs: 0, scheduler });
      const proxy = scripted(cold as Cold, ['-|']);
      cold('-a', { a }).pipe(pacedInsert({ send: proxy.send, slots })).subscribe();
      // Idle at 0; a arrives at 1 (waiting), its request takes 1 frame and uses the slot: closed until 7.
      expectObservable(slots.idle$, '^--------!').toBe('tf-----t-', { t: true, f: false });
      expectObservable(slots.ready$, '^--------!').toBe('t------t-', { t: true });
    });
  });

  it('enqueue and dequeue pair: batches still buffered at unsubscribe leave no batch counted as waiting', () => {
    const scheduler = newTestScheduler();
    let slots!: ProxySlots;
    scheduler.run(({ cold, expectObservable }) => {
      slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler });
      // a takes 5 frames; b and c wait in concatMap's buffer; unsubscribe at 3.
      const proxy = scripted(cold as Cold, ['-----|']);
      expectObservable(cold('(abc)', { a, b, c: sealed('c') }).pipe(pacedInsert({ send: proxy.send, slots })), '^--!').toBe('---');
    });
    let waiting = -1;
    slots.state$.subscribe((state) => (waiting = state.waiting)).unsubscribe();
    expect(waiting).toBe(0);
  });

  it('source errors pass through; early unsubscribe stops waiting for a slot', () => {
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler });
      const proxy = scripted(cold as Cold, []);
      expectObservable(cold<SealedBatch>('-#').pipe(pacedInsert({ send: proxy.send, slots }))).toBe('-#');
      const source = cold('(ab)', { a, b });
      expectObservable(source.pipe(pacedInsert({ send: proxy.send, slots })), '^----!').toBe('-a----', { a: stored(a) });
      expectSubscriptions(source.subscriptions).toBe('^----!');
    });
  });
});

/** A small seeded PRNG: the same draws on every run. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32;
}

/** The slot ledger of src/io/slotDir.ts, in memory: each number claimed once. */
function memoryLedger(initial: SlotClaim[] = [], fail?: () => Error) {
  const claims = [...initial];
  const ledger: SlotLedger = {
    latest: () => {
      if (fail) throw fail();
      return claims.at(-1);
    },
    claim: (seq, at, owner) => {
      if (claims.some((claim) => claim.seq === seq)) return false;
      claims.push({ seq, at, owner });
      return true;
    },
  };
  return { ledger, claims };
}

describe('pacedInsert with a slot ledger shared by instances on one address', () => {
  const batches = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => sealed(`${prefix}${i}`, 1, [[0, i + 1]]));

  it('two instances take turns, one slot per interval between them, never two requests closer than the interval', () => {
    const scheduler = newTestScheduler();
    const { ledger, claims } = memoryLedger();
    scheduler.run(({ cold, expectObservable }) => {
      // No jitter: the order is the timers', deterministic. A claims at 0; B waits for A's claim
      // (10) and takes the slot at 10; A's own pace ends at 10 too, sees B's claim, waits to 20.
      const instance = (owner: string) => {
        const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler, shared: { ledger, owner, jitterMs: 0 } });
        return pacedInsert({ send: scripted(cold as Cold, []).send, slots });
      };
      const [a0, a1, a2] = batches('a', 3) as [SealedBatch, SealedBatch, SealedBatch];
      const [b0, b1, b2] = batches('b', 3) as [SealedBatch, SealedBatch, SealedBatch];
      expectObservable(cold('(abc|)', { a: a0, b: a1, c: a2 }).pipe(instance('A'))).toBe('-a-------------------b-------------------(c|)', { a: stored(a0), b: stored(a1), c: stored(a2) });
      expectObservable(cold('(abc|)', { a: b0, b: b1, c: b2 }).pipe(instance('B'))).toBe('-----------a-------------------b-------------------(c|)', { a: stored(b0), b: stored(b1), c: stored(b2) });
    });
    expect(claims.map((claim) => [claim.seq, claim.at, claim.owner])).toEqual([
      [1, 0, 'A'], [2, 10, 'B'], [3, 20, 'A'], [4, 30, 'B'], [5, 40, 'A'], [6, 50, 'B'],
    ]);
  });

  it('three instances with seeded jitter: requests never closer than the period, each gets a fair share, none starves', () => {
    const scheduler = newTestScheduler();
    const { ledger, claims } = memoryLedger();
    const random = lcg(42);
    scheduler.run(({ cold }) => {
      for (const owner of ['A', 'B', 'C']) {
        const slots = new ProxySlots({ minIntervalMs: 100, marginMs: 10, scheduler, shared: { ledger, owner, jitterMs: 20, random } });
        cold('(a|)', { a: batches(owner, 30) }).pipe(concatMap((list) => from(list)), pacedInsert({ send: scripted(cold as Cold, []).send, slots })).subscribe();
      }
    });
    expect(claims).toHaveLength(90);
    const gaps = claims.slice(1).map((claim, i) => claim.at - claims[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(110);
    // The period plus the winner's delay: on average below the jitter's half (the least of three draws).
    expect((claims.at(-1)!.at - claims[0]!.at) / 89).toBeLessThan(110 + 10);
    // Fair: of the first 60 slots (all three had batches then) none went twice in a row to
    // one instance (the last winner yields), each got 20 ± 4, and none waited more than 8
    // slots for one (with the last winner out, a waiting instance loses a slot with chance ½).
    const firstSixty = claims.slice(0, 60);
    expect(firstSixty.filter((claim, i) => i > 0 && claim.owner === firstSixty[i - 1]!.owner)).toEqual([]);
    for (const owner of ['A', 'B', 'C']) {
      expect(Math.abs(firstSixty.filter((claim) => claim.owner === owner).length - 20)).toBeLessThanOrEqual(4);
      const mine = firstSixty.map((claim, i) => (claim.owner === owner ? i : -1)).filter((i) => i >= 0);
      expect(Math.max(...mine.slice(1).map((i, k) => i - mine[k]!))).toBeLessThanOrEqual(8);
    }
  });

  it('a claim left by an instance killed before its request costs one slot, not a stall', () => {
    const scheduler = newTestScheduler();
    const { ledger } = memoryLedger([{ seq: 4, at: 0, owner: 'killed' }]);
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler, shared: { ledger, owner: 'A', jitterMs: 0 } });
      expectObservable(cold('a|', { a }).pipe(pacedInsert({ send: scripted(cold as Cold, []).send, slots }))).toBe('-----------(a|)', { a: stored(a) });
    });
  });

  it('a claim from the future (the clock went back an hour) costs one period, not an hour', () => {
    const scheduler = newTestScheduler();
    const { ledger } = memoryLedger([{ seq: 9, at: 3_600_000, owner: 'B' }]);
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler, shared: { ledger, owner: 'A', jitterMs: 0 } });
      expectObservable(cold('a|', { a }).pipe(pacedInsert({ send: scripted(cold as Cold, []).send, slots }))).toBe('-----------(a|)', { a: stored(a) });
    });
  });

  it('a ledger that cannot be used (a full disk) is reported, and each request is paced on its own', () => {
    const scheduler = newTestScheduler();
    const errors: string[] = [];
    const { ledger } = memoryLedger([], () => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, scheduler, shared: { ledger, owner: 'A', onError: (error) => errors.push((error as NodeJS.ErrnoException).code!) } });
      expectObservable(cold('(abc|)', { a, b, c }).pipe(pacedInsert({ send: scripted(cold as Cold, []).send, slots }))).toBe('-a---------b---------(c|)', { a: stored(a), b: stored(b), c: stored(c) });
    });
    expect(errors).toEqual(['ENOSPC', 'ENOSPC', 'ENOSPC']);
  });

  it('a 503 after a claim (a process outside the ledger took the slot) waits for the slot after it, then goes', () => {
    const scheduler = newTestScheduler();
    const { ledger, claims } = memoryLedger();
    scheduler.run(({ cold, expectObservable }) => {
      const slots = new ProxySlots({ minIntervalMs: 10, marginMs: 0, probeMs: 3, scheduler, shared: { ledger, owner: 'A', jitterMs: 0 } });
      const proxy = scripted(cold as Cold, [['-#', new ProxyRateLimitedError()], '-|']);
      // Claimed at 0, refused at 1; the ledger's next slot is at 10: claimed and stored at 11.
      expectObservable(cold('a|', { a }).pipe(pacedInsert({ send: proxy.send, slots }))).toBe('-----------(a|)', { a: stored(a) });
    });
    expect(claims.map((claim) => claim.at)).toEqual([0, 10]);
  });
});
