/**
 * createPipeline, the product's pipeline as a library: its outcomes as Rx and as an async
 * iterable (rxjs-for-await), the 413 split, stop() and an early break, against the
 * in-memory fakes (no network, no disk).
 */
import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { BodyTooLargeError } from '../errors.ts';
import type { SpooledBatch } from '../io/spool.ts';
import type { InsertOutcome } from '../operators/pacedInsert.ts';
import { uniformRecords } from '../synthetic/uniformDataset.ts';
import { createPipeline } from './anonymizerPipeline.ts';
import { fakeWorld, messagesOf, type FakeWorld } from './fakes.ts';

/** Feeds `count` records of `partition` in chunks of `chunk`; returns their urls (each record's own). */
function feed(world: FakeWorld, partition: number, count: number, chunk: number, firstOffset = 0): string[] {
  const generator = uniformRecords({ seed: BigInt(partition + 1 + firstOffset), startMillis: Date.UTC(2026, 0, 1), rate: 1_000 });
  const all = Array.from({ length: count }, () => generator.next().value!);
  for (let i = 0; i < all.length; i += chunk) world.source.fetch(partition, firstOffset + i, messagesOf(all.slice(i, i + chunk)));
  return all.map((record) => record.url);
}

const within = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms))]);

async function collect(iterable: AsyncIterable<InsertOutcome<SpooledBatch>>): Promise<Array<InsertOutcome<SpooledBatch>>> {
  const outcomes: Array<InsertOutcome<SpooledBatch>> = [];
  for await (const outcome of iterable) outcomes.push(outcome);
  return outcomes;
}

describe('createPipeline', () => {
  it('for await over outcomes(): one stored outcome per batch, their rows every record once, the loop ending with the drain', async () => {
    const world = fakeWorld({ maxBodyBytes: 16 * 1024 });
    const pipeline = createPipeline(world.deps, { drain: true });
    const loop = collect(pipeline.outcomes());
    const urls = [...feed(world, 0, 700, 100), ...feed(world, 1, 300, 150)];
    world.source.end();
    const outcomes = await within(loop, 5_000);
    expect(outcomes.length).toBeGreaterThan(1);
    expect(outcomes.every((outcome) => outcome.kind === 'stored')).toBe(true);
    expect(outcomes.reduce((sum, outcome) => sum + outcome.batch.rowCount, 0)).toBe(1_000);
    expect(new Set(outcomes.map((outcome) => outcome.batch.token))).toEqual(new Set(world.clickhouse.stored.keys()));
    expect(world.clickhouse.urls().sort()).toEqual(urls.sort());
    expect(world.spool.stats().batches).toBe(0);
  });

  it('a 413: the outcome says split, the parts are stored after it, every row once, nothing quarantined', async () => {
    // The proxy takes at most 20 KiB; the pipeline believes 64 KiB.
    const world = fakeWorld({ script: (insert) => (insert.body.byteLength > 20 * 1024 ? new BodyTooLargeError() : undefined) });
    const pipeline = createPipeline(world.deps, { drain: true });
    const all = lastValueFrom(pipeline.outcomes$.pipe(toArray()));
    const urls = feed(world, 0, 600, 600);
    world.source.end();
    const outcomes = await within(all, 5_000);
    const split = outcomes.filter((outcome) => outcome.kind === 'split');
    expect(split.length).toBeGreaterThanOrEqual(1);
    for (const { batch } of split) expect(world.clickhouse.stored.has(batch.token)).toBe(false);
    // Parts carry their parent's token and are each at most half its body.
    const parts = outcomes.filter((outcome) => outcome.kind === 'stored' && /-\d+$/.test(outcome.batch.token));
    expect(parts.length).toBeGreaterThanOrEqual(2);
    for (const { batch } of parts) expect(batch.bodyBytes).toBeLessThanOrEqual(20 * 1024);
    expect(outcomes.filter((outcome) => outcome.kind === 'stored').reduce((sum, outcome) => sum + outcome.batch.rowCount, 0)).toBe(600);
    expect(world.clickhouse.urls().sort()).toEqual(urls.sort());
    expect(world.spool.quarantined).toEqual([]);
  });

  it('stop() ends a running loop gracefully: what was fed is stored or spooled, and the loop completes', async () => {
    const world = fakeWorld({ intervalMs: 10 });
    const pipeline = createPipeline(world.deps);
    const loop = collect(pipeline.outcomes());
    feed(world, 0, 200, 100);
    for (const end = Date.now() + 3_000; world.clickhouse.urls().length < 200 && Date.now() < end; ) await new Promise((resolve) => setTimeout(resolve, 5));
    await within(pipeline.stop(), 3_000);
    const outcomes = await within(loop, 1_000);
    expect(world.source.stopped).toBe(true);
    expect(outcomes.reduce((sum, outcome) => sum + outcome.batch.rowCount, 0)).toBe(200);
    expect(world.clickhouse.urls()).toHaveLength(200);
  });

  it('run() and pipeline.stop(): the promise-shaped handle, stopped from the pipeline', async () => {
    const world = fakeWorld({ intervalMs: 10 });
    const pipeline = createPipeline(world.deps);
    const running = pipeline.run();
    feed(world, 0, 50, 50);
    for (const end = Date.now() + 3_000; world.clickhouse.urls().length < 50 && Date.now() < end; ) await new Promise((resolve) => setTimeout(resolve, 5));
    await within(pipeline.stop(), 3_000);
    await within(running.done, 1_000);
    expect(world.clickhouse.urls()).toHaveLength(50);
  });

  it('leaving the loop early unsubscribes: records fed afterwards are neither read nor sent', async () => {
    const world = fakeWorld({ intervalMs: 10 });
    const pipeline = createPipeline(world.deps);
    const iterator = pipeline.outcomes();
    // The first next() subscribes: the records are fed after it.
    const first = iterator.next();
    feed(world, 0, 30, 30);
    expect((await within(first, 3_000)).value?.kind).toBe('stored');
    // What `break` does in a for-await loop.
    await iterator.return?.();
    const attempts = world.clickhouse.attempts.length;
    const commits = world.source.commits.length;
    feed(world, 0, 30, 30, 30);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(world.clickhouse.attempts.length).toBe(attempts);
    expect(world.source.commits.length).toBe(commits);
    expect(world.clickhouse.urls().length).toBeLessThanOrEqual(30);
  });
});
