/**
 * The Kafka source's decisions against a fake consumer and admin (no broker): which
 * commits it refuses, when it pauses and resumes, and when a drain completes.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { OffsetChunk, SourceMessage } from '../domain/batch.ts';
import { createKafkaSource, type CommitMetadata, type GroupConsumer, type OffsetsAdmin } from './kafkaSource.ts';

type Handler = (event: { payload: Record<string, unknown> }) => void;

/** A consumer group of one member, driven by the test. */
class FakeGroup {
  readonly handlers = new Map<string, Handler>();
  readonly calls: string[] = [];
  readonly committed = new Map<number, { offset: number; metadata: string | null }>();
  commitError: unknown;
  /** The broker keeps nothing a commit sends (kafkajs resolving a commit it never sent). */
  dropCommits = false;
  eachBatch?: (payload: { batch: unknown }) => Promise<void>;
  high = new Map<number, number>();

  readonly consumer: GroupConsumer = {
    events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' } as GroupConsumer['events'],
    on: ((event: string, handler: Handler) => {
      this.handlers.set(event, handler);
      return () => {};
    }) as unknown as GroupConsumer['on'],
    connect: async () => {},
    subscribe: async () => {},
    run: (async (options: { eachBatch: (payload: { batch: unknown }) => Promise<void> }) => {
      this.eachBatch = options.eachBatch;
    }) as unknown as GroupConsumer['run'],
    pause: () => void this.calls.push('pause'),
    resume: () => void this.calls.push('resume'),
    commitOffsets: async (offsets) => {
      if (this.commitError) throw this.commitError;
      if (this.dropCommits) return;
      for (const { partition, offset, metadata } of offsets) this.committed.set(partition, { offset: Number(offset), metadata: metadata ?? null });
    },
    disconnect: async () => {},
  };

  readonly admin: OffsetsAdmin = {
    connect: async () => {},
    disconnect: async () => {},
    fetchTopicOffsets: (async () => [...this.high].map(([partition, high]) => ({ partition, offset: String(high), high: String(high), low: '0' }))) as unknown as OffsetsAdmin['fetchTopicOffsets'],
    fetchOffsets: (async () => [{ topic: 't', partitions: [...this.committed].map(([partition, { offset, metadata }]) => ({ partition, offset: String(offset), metadata })) }]) as unknown as OffsetsAdmin['fetchOffsets'],
  };

  join(partitions: number[]): void {
    this.handlers.get('consumer.group_join')!({ payload: { memberAssignment: { t: partitions }, isLeader: true } });
  }

  async fetch(partition: number, first: number, last: number, high = last + 1): Promise<void> {
    const messages = Array.from({ length: last - first + 1 }, (_, i) => ({ offset: String(first + i), key: null, value: Buffer.from([1]) }));
    await this.eachBatch!({ batch: { partition, messages, highWatermark: String(high), lastOffset: () => String(last), firstOffset: () => String(first) } });
  }
}

const logger = pino({ level: 'silent' });
const tick = () => new Promise((resolve) => setImmediate(resolve));

async function started(group: FakeGroup, options: { maxOutstanding?: number; drain?: boolean } = {}) {
  const source = createKafkaSource({ brokers: [], topic: 't', groupId: 'g', logger, ...options }, group);
  const chunks: Array<OffsetChunk<SourceMessage>> = [];
  let completed = false;
  source.chunks$.subscribe({ next: (chunk) => chunks.push(chunk), complete: () => (completed = true) });
  await tick();
  return { source, chunks, completed: () => completed };
}

const batchOf = (chunk: OffsetChunk<SourceMessage>, token = 'tok') => ({ token, offsets: new Map([[chunk.partition, chunk.lastOffset]]), generation: chunk.generation });

describe('createKafkaSource against a fake consumer', () => {
  it('commits offset + 1 with metadata naming the spool, the batch and where this member started', async () => {
    const group = new FakeGroup();
    const { source, chunks } = await started(group);
    group.join([0]);
    await group.fetch(0, 100, 109);
    expect(await source.commit(batchOf(chunks[0]!), 'spool-a')).toBe(true);
    const entry = group.committed.get(0)!;
    expect(entry.offset).toBe(110);
    expect(JSON.parse(entry.metadata!)).toEqual({ o: 'spool-a', s: 100, t: 'tok' } satisfies CommitMetadata);
    expect(source.outstanding()).toBe(0);
  });

  it('refuses a batch read before the latest rebalance, without sending a commit', async () => {
    const group = new FakeGroup();
    const { source, chunks } = await started(group);
    group.join([0]);
    await group.fetch(0, 0, 9);
    group.join([0]);
    expect(await source.commit(batchOf(chunks[0]!), 'spool-a')).toBe(false);
    expect(group.committed.size).toBe(0);
    expect(source.discarded()).toBe(1);
  });

  it('a commit the broker refuses as stale is handed back; any other commit error is thrown', async () => {
    const group = new FakeGroup();
    const { source, chunks } = await started(group);
    group.join([0]);
    await group.fetch(0, 0, 9);
    group.commitError = Object.assign(new Error('The coordinator is not aware of this member'), { type: 'UNKNOWN_MEMBER_ID' });
    expect(await source.commit(batchOf(chunks[0]!), 'spool-a')).toBe(false);
    group.commitError = new TypeError('boom');
    await expect(source.commit(batchOf(chunks[0]!), 'spool-a')).rejects.toThrow('boom');
    expect(source.discarded()).toBe(1);
  });

  it('a commit that did not land (the broker holds nothing) is handed back', async () => {
    const group = new FakeGroup();
    const { source, chunks } = await started(group);
    group.join([0]);
    await group.fetch(0, 0, 9);
    group.dropCommits = true;
    expect(await source.commit(batchOf(chunks[0]!), 'spool-a')).toBe(false);
    expect(source.outstanding()).toBe(10);
  });

  it('pauses while more than maxOutstanding messages wait for a commit, and resumes after it', async () => {
    const group = new FakeGroup();
    const { source, chunks } = await started(group, { maxOutstanding: 15 });
    group.join([0]);
    group.calls.length = 0;
    await group.fetch(0, 0, 9);
    expect(group.calls).toEqual([]);
    await group.fetch(0, 10, 19);
    expect(group.calls).toEqual(['pause']);
    await source.commit(batchOf(chunks[1]!), 'spool-a');
    expect(group.calls).toEqual(['pause', 'resume']);
  });

  it('a pause reason holds until it is lifted, whatever the outstanding count', async () => {
    const group = new FakeGroup();
    const { source } = await started(group);
    group.join([0]);
    group.calls.length = 0;
    source.pause('spool-full');
    source.pause('spool-disk');
    source.resume('spool-full');
    expect(group.calls).toEqual(['pause']);
    source.resume('spool-disk');
    expect(group.calls).toEqual(['pause', 'resume']);
  });

  it('drain: completes once every partition reached its high-water mark seen at start', async () => {
    const group = new FakeGroup();
    group.high = new Map([[0, 10], [1, 5]]);
    const { chunks, completed } = await started(group, { drain: true });
    group.join([0, 1]);
    await group.fetch(0, 0, 9);
    expect(completed()).toBe(false);
    await group.fetch(1, 0, 4);
    expect(completed()).toBe(true);
    expect(chunks.map((chunk) => [chunk.partition, chunk.lastOffset])).toEqual([[0, 9], [1, 4]]);
  });

  it('is caught up only when no partition lags its high-water mark', async () => {
    const group = new FakeGroup();
    const { source } = await started(group);
    group.join([0]);
    await group.fetch(0, 0, 9, 100);
    expect(source.isCaughtUp()).toBe(false);
    expect(source.lag().get(0)).toBe(90);
    await group.fetch(0, 10, 99, 100);
    expect(source.isCaughtUp()).toBe(true);
  });
});
