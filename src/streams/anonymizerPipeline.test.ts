/**
 * The chains as a whole (ingestion, delivery, runPipeline) against in-memory fakes of
 * Kafka, the spool, ClickHouse and the dead-letter topic: no network, no disk. The
 * effects are promises, as the real ones are, so these run in (short) real time rather
 * than in a TestScheduler's virtual time; the pure pieces they wire (sealGate,
 * backpressure's hysteresis, assertBatchCanSeal) are tested as tables below.
 */
import { BehaviorSubject, Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { uniformRecords } from '../synthetic/uniformDataset.ts';
import { BodyTooLargeError, ClickHouseError, NetworkError } from '../errors.ts';
import { assertBatchCanSeal, backpressure, MAX_OUTSTANDING_ROWS, MAX_ROWS_PER_BATCH, runPipeline, sealGate } from './anonymizerPipeline.ts';
import { fakeWorld, messagesOf, type FakeWorld } from './fakes.ts';

const records = (seed: number, count: number) => {
  const generator = uniformRecords({ seed: BigInt(seed), startMillis: Date.UTC(2026, 0, 1), rate: 1_000 });
  return Array.from({ length: count }, () => generator.next().value!);
};

/** Feeds `count` records of `partition` in chunks of `chunk`, then `garbage` undecodable messages. */
function feed(world: FakeWorld, partition: number, count: number, chunk: number, garbage = 0): string[] {
  const all = records(partition + 1, count);
  let offset = 0;
  for (let i = 0; i < all.length; i += chunk) {
    const values = messagesOf(all.slice(i, i + chunk));
    world.source.fetch(partition, offset, values);
    offset += values.length;
  }
  if (garbage > 0) world.source.fetch(partition, offset, Array.from({ length: garbage }, () => new Uint8Array([1, 2, 3])));
  return all.map((record) => record.url);
}

const within = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms))]);

describe('runPipeline with in-memory fakes', () => {
  it('drain: every record stored once, the garbage dead-lettered, every offset committed, the spool empty', async () => {
    const world = fakeWorld();
    const pipeline = runPipeline(world.deps, { drain: true });
    const urls = [...feed(world, 0, 900, 300, 2), ...feed(world, 1, 500, 250)];
    world.source.end();
    await within(pipeline.done, 5_000);
    expect(world.clickhouse.urls().sort()).toEqual(urls.sort());
    expect(world.deadLetters.sent.map((r) => [r.message.partition, r.message.offset])).toEqual([[0, 900], [0, 901]]);
    const committed = new Map<number, number>();
    for (const { offsets } of world.source.commits) for (const [p, o] of offsets) committed.set(p, Math.max(committed.get(p) ?? -1, o));
    expect(Object.fromEntries(committed)).toEqual({ 0: 901, 1: 499 });
    expect(world.spool.stats().batches).toBe(0);
    // The gauges follow the spool to the end of the drain, after ingestion has ended.
    expect((await world.deps.metrics.spoolBatches.get()).values[0]?.value).toBe(0);
  });

  it('a drain that filled the spool past its limit ends resumed, with the gauges at zero', async () => {
    const world = fakeWorld({ spoolMaxBytes: 2_000, maxBodyBytes: 8 * 1024, intervalMs: 5 });
    const pipeline = runPipeline(world.deps, { drain: true });
    feed(world, 0, 1_000, 100);
    world.source.end();
    await within(pipeline.done, 10_000);
    expect(world.source.pauses).toContain('pause:spool-full');
    expect(world.source.pauses.at(-1)).toBe('resume:spool-full');
    expect((await world.deps.metrics.paused.get()).values[0]?.value).toBe(0);
    expect((await world.deps.metrics.spoolBytes.get()).values[0]?.value).toBe(0);
  });

  it('a 413 splits the batch into parts under half its size; every row stored once', async () => {
    // The proxy takes at most 20 KiB; the app believes 64 KiB.
    const world = fakeWorld({ script: (insert) => (insert.body.byteLength > 20 * 1024 ? new BodyTooLargeError() : undefined) });
    const pipeline = runPipeline(world.deps, { drain: true });
    const urls = feed(world, 0, 600, 600);
    world.source.end();
    await within(pipeline.done, 5_000);
    expect(world.clickhouse.urls().sort()).toEqual(urls.sort());
    expect((await world.deps.metrics.split.get()).values[0]?.value).toBeGreaterThanOrEqual(1);
    expect(world.spool.quarantined).toEqual([]);
  });

  it('a retriable failure is retried with the same token until stored, once', async () => {
    const world = fakeWorld({ script: (_insert, attempt) => (attempt <= 2 ? new NetworkError('reset', false) : undefined) });
    const pipeline = runPipeline(world.deps, { drain: true });
    const urls = feed(world, 0, 100, 100);
    world.source.end();
    await within(pipeline.done, 5_000);
    expect(world.clickhouse.urls().sort()).toEqual(urls.sort());
    const [token] = world.clickhouse.stored.keys();
    expect(world.clickhouse.attempts).toEqual([token, token, token]);
  });

  it('under capacity, each open slot seals what is open: records do not wait for a full body or the end of input', async () => {
    const world = fakeWorld({ intervalMs: 30 });
    const pipeline = runPipeline(world.deps, { drain: false });
    const until = async (count: number) => {
      for (const end = Date.now() + 3_000; world.clickhouse.urls().length < count; await new Promise((resolve) => setTimeout(resolve, 5))) {
        if (Date.now() > end) throw new Error(`${world.clickhouse.urls().length} of ${count} stored`);
      }
    };
    const first = records(7, 50);
    world.source.fetch(0, 0, messagesOf(first));
    await until(50);
    const second = records(8, 50);
    world.source.fetch(0, 50, messagesOf(second));
    await until(100);
    expect(world.clickhouse.stored.size).toBe(2);
    const reasons = (await world.deps.metrics.sealed.get()).values.map((v) => [v.labels.reason, v.value]);
    expect(reasons).toEqual([['proxy-ready', 2]]);
    await within(pipeline.stop(), 2_000);
  });

  it('an idle slot waits for rows still on their way to the open batch: one fetch, one body', async () => {
    // A fetch whose garbage takes the dead-letter topic 400 ms (longer than SETTLE_MS):
    // its rows reach the open batch only then. Sealing at the idle slot before they arrive
    // sent a body without them, and left them waiting for the next fetch.
    const world = fakeWorld({ intervalMs: 30 });
    world.deadLetters.delayMs = 400;
    const pipeline = runPipeline(world.deps, { drain: false });
    const rows = records(11, 300);
    world.source.fetch(0, 0, [new Uint8Array([1, 2, 3]), ...messagesOf(rows)]);
    const urls = rows.map((record) => record.url);
    for (const end = Date.now() + 3_000; world.clickhouse.urls().length < 300 && Date.now() < end; ) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(world.clickhouse.urls().sort()).toEqual(urls.sort());
    expect(world.clickhouse.stored.size).toBe(1);
    expect(world.deadLetters.sent).toHaveLength(1);
    await within(pipeline.stop(), 2_000);
  });

  it('while delivery is blocked, the open batch is still sealed at each slot: records reach the spool and are committed', async () => {
    const world = fakeWorld({ intervalMs: 20, script: () => new ClickHouseError('Code: 516. DB::Exception: Authentication failed', 403, 516) });
    const pipeline = runPipeline(world.deps, { drain: false });
    world.source.fetch(0, 0, messagesOf(records(9, 50)));
    // The first batch goes out and is refused: delivery blocked, the batch stays in the spool.
    for (const end = Date.now() + 2_000; world.spool.rows() < 50 && Date.now() < end; ) await new Promise((resolve) => setTimeout(resolve, 5));
    world.source.fetch(0, 50, messagesOf(records(10, 50)));
    for (const end = Date.now() + 2_000; world.spool.rows() < 100 && Date.now() < end; ) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(world.spool.rows()).toBe(100);
    expect(Math.max(...world.source.commits.flatMap((c) => c.offsets.map(([, o]) => o)))).toBe(99);
    expect(world.clickhouse.stored.size).toBe(0);
    expect(world.spool.quarantined).toEqual([]);
    await within(pipeline.stop(), 2_000);
  });

  it('stop(): fetching stops, the open batch is persisted and committed, done resolves', async () => {
    // A long interval: after the first request nothing more is sent.
    const world = fakeWorld({ intervalMs: 60_000 });
    world.source.setCaughtUp(false);
    const pipeline = runPipeline(world.deps, { drain: false });
    feed(world, 0, 200, 100);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await within(pipeline.stop(), 5_000);
    expect(world.source.stopped).toBe(true);
    // Everything handed over is either stored or waiting in the spool, and committed.
    expect(world.clickhouse.urls().length + world.spool.rows()).toBe(200);
    expect(world.spool.rows()).toBeGreaterThan(0);
    expect(Math.max(...world.source.commits.flatMap((c) => c.offsets.map(([, o]) => o)))).toBe(199);
  });

  it('abort(): done rejects with the error', async () => {
    const world = fakeWorld();
    const pipeline = runPipeline(world.deps, { drain: false });
    const boom = new Error('boom');
    pipeline.abort(boom);
    await expect(within(pipeline.done, 1_000)).rejects.toBe(boom);
  });

  it('an error in a chain rejects done and stops both chains', async () => {
    const world = fakeWorld();
    world.deps.spool.stage = async () => {
      throw new Error('disk gone');
    };
    const pipeline = runPipeline(world.deps, { drain: false });
    feed(world, 0, 10, 10);
    world.source.end();
    await expect(within(pipeline.done, 2_000)).rejects.toThrow('disk gone');
  });
});

describe('sealGate: seal without waiting to fill only when all four hold', () => {
  const cases: Array<[string, boolean, boolean, number, boolean, boolean]> = [
    ['idle proxy, empty spool, nothing in flight, caught up', true, true, 0, true, true],
    ['the proxy is not idle', false, true, 0, true, false],
    ['a batch waits in the spool', true, false, 0, true, false],
    ['rows are on their way to the spool', true, true, 10, true, false],
    ['the source is behind (a backlog fills whole bodies)', true, true, 0, false, false],
  ];
  it.each(cases)('%s', (_name, idle, empty, inFlight, caughtUp, open) => {
    const seen: boolean[] = [];
    sealGate(new BehaviorSubject(idle), new BehaviorSubject(empty), new BehaviorSubject(inFlight), new BehaviorSubject(caughtUp)).subscribe((value) => seen.push(value));
    expect(seen).toEqual([open]);
  });

  it('emits only changes', () => {
    const idle = new BehaviorSubject(true);
    const inFlight = new BehaviorSubject(0);
    const seen: boolean[] = [];
    sealGate(idle, new BehaviorSubject(true), inFlight, new BehaviorSubject(true)).subscribe((value) => seen.push(value));
    inFlight.next(5);
    inFlight.next(7);
    inFlight.next(0);
    idle.next(true);
    expect(seen).toEqual([true, false, true]);
  });
});

describe('backpressure: pause above the limit, resume below 80 % of it', () => {
  it.each([
    ['climbs past the limit, falls through the band, then below it', [0, 50, 150, 90, 85, 70, 150], ['pause:spool-full', 'resume:spool-full', 'pause:spool-full']],
    ['stays under the limit', [0, 99, 100, 50], []],
    ['at the limit exactly is not over it', [100], []],
  ])('%s', (_name, sizes, expected) => {
    const world = fakeWorld({ spoolMaxBytes: 100 });
    const changed = new Subject<void>();
    let bytes = sizes[0]!;
    const spool = { ...world.deps.spool, changed$: changed, stats: () => ({ batches: 1, bytes }) };
    const subscription = backpressure({ ...world.deps, spool }).subscribe();
    for (const size of sizes.slice(1)) {
      bytes = size;
      changed.next();
    }
    subscription.unsubscribe();
    // The first resume (at 0) is the initial state: pauses only ever follow a rise.
    expect(world.source.pauses.filter((call, i) => !(i === 0 && call.startsWith('resume')))).toEqual(expected);
  });
});

describe('assertBatchCanSeal: the two pause mechanisms cannot deadlock', () => {
  it.each([
    [MAX_ROWS_PER_BATCH, MAX_OUTSTANDING_ROWS, true],
    [100, 101, true],
    [100, 100, false],
    [200, 100, false],
  ])('a batch of %i rows, the source pausing at %i: allowed %s', (rows, outstanding, allowed) => {
    const check = () => assertBatchCanSeal(rows, outstanding);
    if (allowed) expect(check).not.toThrow();
    else expect(check).toThrow(/could never seal/);
  });
});
