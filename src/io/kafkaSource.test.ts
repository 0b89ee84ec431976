/**
 * The pure decisions of the Kafka source, as tables: what a restart does with a staged
 * batch (stagedCommitLanded), which commit failures mean "this member is stale"
 * (isStaleGroupError), and which admin failures are worth trying again (isTransientKafkaError).
 * The errors are kafkajs's own classes, built as kafkajs builds them.
 */
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { isStaleGroupError, isTransientKafkaError, stagedCommitLanded, type CommitMetadata } from './kafkaSource.ts';

const { KafkaJSProtocolError, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSConnectionError, KafkaJSGroupCoordinatorNotFound, KafkaJSError } = kafkajs as unknown as Record<string, new (...args: never[]) => Error>;

/** A broker error as kafkajs's protocol layer creates it (type, code, retriable from its table). */
const broker = (type: string, retriable: boolean): Error => new (KafkaJSProtocolError as new (e: object) => Error)({ type, code: 0, retriable, message: `broker says ${type}` });
const wrapped = (cause: Error): Error => new (KafkaJSNonRetriableError as new (e: Error, o: object) => Error)(cause, { cause });
const retriesExceeded = (cause: Error): Error => new (KafkaJSNumberOfRetriesExceeded as new (e: Error, o: object) => Error)(cause, { retryCount: 5, retryTime: 1000 });

const meta = (o: string, s: number, t = 'tok'): string => JSON.stringify({ o, s, t } satisfies CommitMetadata);

describe('stagedCommitLanded: publish or discard a batch staged before a crash', () => {
  const me = 'spool-a';
  const cases: Array<[string, Array<[number, number]>, Array<[number, number, string | null]>, boolean]> = [
    // name, the batch's [partition, last offset], the group's [partition, committed offset, metadata], landed?
    ['our commit, exactly past the batch', [[0, 9]], [[0, 10, meta(me, 0)]], true],
    ['our commit, further on (later batches committed after it)', [[0, 9]], [[0, 50, meta(me, 0)]], true],
    ['committed offset before the batch: the commit never landed', [[0, 9]], [[0, 9, meta(me, 0)]], false],
    ['no commit at all for the partition', [[0, 9]], [], false],
    ['another owner, who started after the batch (never read it)', [[0, 9]], [[0, 20, meta('spool-b', 10)]], true],
    ['another owner, who started at or before the batch (read it again)', [[0, 9]], [[0, 20, meta('spool-b', 5)]], false],
    ['metadata that is not ours and not JSON', [[0, 9]], [[0, 20, 'garbage']], false],
    ['no metadata (a commit by another tool)', [[0, 9]], [[0, 20, null]], false],
    ['two partitions, both landed', [[0, 9], [1, 4]], [[0, 10, meta(me, 0)], [1, 5, meta(me, 0)]], true],
    ['two partitions, one not landed: the whole batch is not', [[0, 9], [1, 4]], [[0, 10, meta(me, 0)], [1, 4, meta(me, 0)]], false],
    ['a batch with no offsets (a split part) needs no commit', [], [], true],
  ];
  it.each(cases)('%s', (_name, offsets, committed, landed) => {
    const map = new Map(committed.map(([partition, offset, metadata]) => [partition, { offset, metadata }]));
    expect(stagedCommitLanded(offsets, map, me)).toBe(landed);
  });
});

describe('isStaleGroupError: a commit refused because the group moved on', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['ILLEGAL_GENERATION, as kafkajs wraps it', wrapped(broker('ILLEGAL_GENERATION', false)), true],
    ['UNKNOWN_MEMBER_ID', wrapped(broker('UNKNOWN_MEMBER_ID', false)), true],
    ['REBALANCE_IN_PROGRESS, bare', broker('REBALANCE_IN_PROGRESS', true), true],
    ['FENCED_INSTANCE_ID', broker('FENCED_INSTANCE_ID', false), true],
    ['a connection error', new (KafkaJSConnectionError as new (m: string) => Error)('Connection error'), false],
    ['another broker error', wrapped(broker('TOPIC_AUTHORIZATION_FAILED', false)), false],
    ['a plain Error whose message names a generation', new Error('ILLEGAL_GENERATION'), false],
    ['undefined', undefined, false],
  ];
  it.each(cases)('%s', (_name, error, stale) => {
    expect(isStaleGroupError(error)).toBe(stale);
  });
});

describe('isTransientKafkaError: an admin read worth trying again', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['a retriable kafkajs error', new (KafkaJSError as new (m: string, o: object) => Error)('try again', { retriable: true }), true],
    ['a connection error (retriable)', new (KafkaJSConnectionError as new (m: string) => Error)('Connection error: ECONNREFUSED'), true],
    ['COORDINATOR_LOAD_IN_PROGRESS wrapped non-retriable', wrapped(broker('COORDINATOR_LOAD_IN_PROGRESS', false)), true],
    ['LEADER_NOT_AVAILABLE after kafkajs gave up retrying', retriesExceeded(broker('LEADER_NOT_AVAILABLE', true)), true],
    ['the group coordinator not found yet', new (KafkaJSGroupCoordinatorNotFound as new (m: string) => Error)('Failed to find group coordinator'), true],
    ['a connection refused after kafkajs gave up retrying (no broker: fail now)', retriesExceeded(new (KafkaJSConnectionError as new (m: string) => Error)('Connection error')), false],
    ['authorization refused', wrapped(broker('GROUP_AUTHORIZATION_FAILED', false)), false],
    ['a plain Error whose message says "leader not available"', new Error('leader not available'), false],
    ['a TypeError from our own code', new TypeError('x is undefined'), false],
  ];
  it.each(cases)('%s', (_name, error, transient) => {
    expect(isTransientKafkaError(error)).toBe(transient);
  });
});
