/**
 * Wire protocol: the Kafka protocol through kafkajs 2.2 (consumer group, Fetch,
 * OffsetCommit with metadata, ListOffsets, OffsetFetch). Tested against Apache Kafka 3.9
 * in KRaft mode.
 *
 * - One consumer in group `groupId` on `topic`. A group with no committed offsets starts
 *   at the earliest retained offset (`fromBeginning`), so a first deployment skips nothing.
 * - Offsets are never auto-committed. `commit()` commits a persisted batch, with metadata
 *   that names the committing spool, the batch, and the offset this owner started the
 *   partition at (`CommitMetadata`): after a crash, that is how a staged batch learns
 *   whether its commit landed.
 * - Each fetched partition batch becomes one `OffsetChunk`, tagged with the group
 *   generation it was fetched in. After a rebalance kafkajs reads again from the committed
 *   offsets, so `commit()` refuses (returns false) a batch of an older generation.
 * - `pause(reason)`/`resume(reason)` stop and restart fetching (spool full); independently,
 *   fetching pauses while more than `maxOutstanding` messages are handed over and not yet
 *   committed (an encode or commit that can't keep up).
 * - Drain mode reads the high-water marks at start and completes once they are reached.
 *   `stop()` completes the chunk stream at once (graceful shutdown).
 */
import { Kafka, logLevel as KafkaLogLevel, type Admin, type Consumer, type LogEntry } from 'kafkajs';
import { BehaviorSubject, distinctUntilChanged, Observable, type Subscriber } from 'rxjs';
import type { Logger } from 'pino';
import type { OffsetChunk, PartitionOffsets, SourceMessage } from '../domain/batch.ts';
import { PartitionProgress, shouldPause } from '../domain/partitionProgress.ts';

export interface KafkaSourceConfig {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly groupId: string;
  readonly clientId?: string;
  /** Complete once the high-water marks seen at start are consumed. */
  readonly drain?: boolean;
  /** Messages handed over but not yet committed before fetching pauses. Default 400 000. */
  readonly maxOutstanding?: number;
  readonly logger: Logger;
}

/** What a commit records next to each offset (Kafka offset metadata, JSON). */
export interface CommitMetadata {
  /** The spool (instance) that committed. */
  readonly o: string;
  /** The committed offset this owner started the partition at: it read everything from here. */
  readonly s: number;
  /** The batch whose persistence this commit follows. */
  readonly t: string;
}

export interface CommittableBatch {
  readonly token: string;
  readonly offsets: PartitionOffsets;
  readonly generation?: number;
}

export interface KafkaSource {
  /** The chunks, one per fetched partition batch. Subscribe once. */
  readonly chunks$: Observable<OffsetChunk<SourceMessage>>;
  /**
   * Commits `offset + 1` per partition of the batch, with `CommitMetadata`. Resolves
   * false, committing nothing, when the batch holds data from before the latest
   * rebalance or the broker refuses the generation: its records will be read again.
   */
  commit(batch: CommittableBatch, instanceId: string): Promise<boolean>;
  /** True when every partition heard from has nothing more to fetch right now. */
  isCaughtUp(): boolean;
  /** Messages handed over and not committed past which fetching pauses. */
  readonly maxOutstanding: number;
  /** `isCaughtUp()` as a stream: the current value on subscription, then every change. */
  readonly caughtUp$: Observable<boolean>;
  /** True once the consumer has joined its group (it may hold no partition). */
  joined(): boolean;
  /** Per partition: the high-water mark minus the next offset to fetch, as last seen. */
  lag(): ReadonlyMap<number, number>;
  /** Messages handed over and not yet committed. */
  outstanding(): number;
  /** Batches whose commit was refused (their records are read again by their owner). */
  discarded(): number;
  pause(reason: string): void;
  resume(reason: string): void;
  /** Completes `chunks$` now, fetching no more. */
  stop(): void;
  close(): Promise<void>;
}

/** kafkajs errors meaning "this member's view of the group is stale": the commit must not happen. */
const STALE_GROUP_ERRORS = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS', 'FENCED_INSTANCE_ID']);

/** The error and the causes kafkajs wrapped it in (`KafkaJSNonRetriableError`, `KafkaJSNumberOfRetriesExceeded`), outermost first. */
function* causeChain(error: unknown): Generator<{ readonly name?: string; readonly type?: string; readonly retriable?: boolean }> {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    yield current as { name?: string; type?: string; retriable?: boolean };
  }
}

/** kafkajs wraps the broker's error in `KafkaJSNonRetriableError`; the type sits on a `cause`. */
export function isStaleGroupError(error: unknown): boolean {
  for (const { type } of causeChain(error)) if (type !== undefined && STALE_GROUP_ERRORS.has(type)) return true;
  return false;
}

/**
 * Broker answers (Kafka protocol error names, as kafkajs types them) that mean "not yet,
 * try again": a coordinator still loading after a start, a leader moving.
 */
const TRANSIENT_BROKER_ERRORS = new Set([
  'COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'NOT_COORDINATOR',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'NOT_LEADER_OR_FOLLOWER',
  'REQUEST_TIMED_OUT',
  'UNKNOWN_TOPIC_OR_PARTITION',
]);
/**
 * Whether an admin read may succeed if tried again: from kafkajs's error classes and the
 * broker's error types, never from message text. kafkajs's own `retriable` counts only on
 * the outermost error: a connection error under `KafkaJSNumberOfRetriesExceeded` was retried
 * already. A broker that is still electing a coordinator or a leader is worth waiting for at
 * any depth; so is `KafkaJSGroupCoordinatorNotFound`, which kafkajs marks non-retriable.
 */
export function isTransientKafkaError(error: unknown): boolean {
  if ((error as { retriable?: unknown } | null)?.retriable === true) return true;
  for (const link of causeChain(error)) {
    if (link.type !== undefined && TRANSIENT_BROKER_ERRORS.has(link.type)) return true;
    if (link.name === 'KafkaJSGroupCoordinatorNotFound') return true;
  }
  return false;
}

export function createKafkaClient(brokers: readonly string[], clientId: string, log: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers: [...brokers],
    logLevel: KafkaLogLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...extra } = entry.log;
      // kafkajs logs retried, transient failures (coordinator not yet elected, a broker
      // restarting) at ERROR; what is not recovered reaches us as a rejected promise.
      const level = entry.level <= KafkaLogLevel.WARN ? 'warn' : 'debug';
      log[level]({ kafkajs: entry.namespace, ...extra }, message);
    },
    retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
  });
}

/**
 * The part of a kafkajs consumer the source uses: the seam that lets its decisions run
 * against a fake in unit tests (src/io/kafkaSource.spec.ts).
 */
export type GroupConsumer = Pick<Consumer, 'connect' | 'subscribe' | 'run' | 'pause' | 'resume' | 'commitOffsets' | 'disconnect' | 'on' | 'events'>;
/** The part of a kafkajs admin client the source uses. */
export type OffsetsAdmin = Pick<Admin, 'connect' | 'disconnect' | 'fetchTopicOffsets' | 'fetchOffsets'>;

export interface KafkaSourceClients {
  readonly consumer: GroupConsumer;
  readonly admin: OffsetsAdmin;
}

export function createKafkaSource(config: KafkaSourceConfig, clients: KafkaSourceClients = kafkaClientsFor(config)): KafkaSource {
  const log = config.logger;
  const { consumer, admin } = clients;
  const maxOutstanding = config.maxOutstanding ?? 400_000;
  const progress = new PartitionProgress();
  const pauseReasons = new Set<string>();
  let paused = false;
  let connected = false;
  let generation = 0;
  let discarded = 0;
  let subscriber: Subscriber<OffsetChunk<SourceMessage>> | undefined;
  let drainTargets: Map<number, number> | undefined;
  const caughtUp = new BehaviorSubject(true);
  const caughtUp$ = caughtUp.pipe(distinctUntilChanged());

  /**
   * Pauses or resumes to match the reasons. `force` re-applies the state even if it looks
   * unchanged: kafkajs keeps its own pause state across a rebalance but loses it when it
   * restarts the consumer. pause()/resume() throw while kafkajs has no group (before run(),
   * during a restart): the state is then applied on the next call.
   */
  const applyPause = (force = false): void => {
    const pause = shouldPause(pauseReasons, progress.outstanding(), maxOutstanding);
    if (!connected || (pause === paused && !force)) return;
    try {
      if (pause) consumer.pause([{ topic: config.topic }]);
      else consumer.resume([{ topic: config.topic }]);
    } catch {
      return;
    }
    if (pause !== paused) log.info({ reasons: [...pauseReasons], outstanding: progress.outstanding() }, pause ? 'paused consumption' : 'resumed consumption');
    paused = pause;
  };

  /** A batch whose records will be read again (an old generation, a refused or lost commit). */
  const handBack = (): false => {
    discarded++;
    applyPause(true);
    return false;
  };

  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    generation++;
    progress.reset();
    caughtUp.next(true);
    log.info({ generation, partitions: event.payload.memberAssignment[config.topic] ?? [], leader: event.payload.isLeader }, 'joined the consumer group');
    applyPause(true);
  });

  // A crash kafkajs does not restart from (bad credentials, a non-retriable error) would
  // otherwise stop consumption without a word.
  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart } = event.payload;
    log.warn({ err: error.message, restart }, 'the Kafka consumer crashed');
    if (!restart) subscriber?.error(error);
  });

  const checkDrained = (): void => {
    if (!drainTargets || !subscriber || !progress.reached(drainTargets)) return;
    log.info('drain: every partition consumed up to its high-water mark at start');
    drainTargets = undefined;
    stop();
  };

  /** Pausing before `run()` has set the group up throws; then there is nothing to pause. */
  const pauseQuietly = (): void => {
    if (!connected) return;
    try {
      consumer.pause([{ topic: config.topic }]);
    } catch {
      // not running yet
    }
  };

  const stop = (): void => {
    pauseQuietly();
    const current = subscriber;
    subscriber = undefined;
    current?.complete();
  };

  const onBatch = (batch: { partition: number; messages: ReadonlyArray<{ offset: string; key: Buffer | null; value: Buffer | null }>; highWatermark: string; lastOffset(): string; firstOffset(): string | null }): void => {
    if (!subscriber || batch.messages.length === 0) return;
    const partition = batch.partition;
    const items: SourceMessage[] = batch.messages.map((message) => ({ partition, offset: Number(message.offset), key: message.key, value: message.value }));
    const lastOffset = Number(batch.lastOffset());
    progress.fetched(partition, Number(batch.firstOffset() ?? lastOffset), lastOffset, Number(batch.highWatermark));
    caughtUp.next(progress.isCaughtUp());
    subscriber.next({ partition, items, lastOffset, generation });
    applyPause();
    checkDrained();
  };

  const chunks$ = new Observable<OffsetChunk<SourceMessage>>((observer) => {
    subscriber = observer;
    const start = async (): Promise<void> => {
      await consumer.connect();
      connected = true;
      if (config.drain) drainTargets = await readDrainTargets(admin, config, log);
      await consumer.subscribe({ topic: config.topic, fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatch: async ({ batch }) => onBatch(batch) });
      // A pause asked for before the consumer ran (a spool already full at start) applies now.
      applyPause();
      checkDrained();
    };
    start().catch((error: unknown) => observer.error(error));
    return () => {
      if (subscriber === observer) subscriber = undefined;
      pauseQuietly();
    };
  });

  const commit = async (batch: CommittableBatch, instanceId: string): Promise<boolean> => {
    // Checked right before the request: after a rebalance, kafkajs reads every partition
    // again from its committed offset, so data of an older generation must not be committed.
    if (batch.generation !== undefined && batch.generation !== generation) {
      log.warn({ token: batch.token, batchGeneration: batch.generation, generation }, 'not committing a batch read before the latest rebalance: its records are read again');
      return handBack();
    }
    const generationAtCommit = generation;
    const topicPartitions = [...batch.offsets].map(([partition, offset]) => {
      const metadata: CommitMetadata = { o: instanceId, s: progress.since(partition), t: batch.token };
      return { topic: config.topic, partition, offset: String(offset + 1), metadata: JSON.stringify(metadata) };
    });
    try {
      await consumer.commitOffsets(topicPartitions);
    } catch (error) {
      if (!isStaleGroupError(error)) throw error;
      log.warn({ token: batch.token, err: (error as Error).message }, 'commit refused after a rebalance: its records are read again by their owner');
      return handBack();
    }
    // kafkajs resolves commitOffsets without sending anything while its consumer is
    // restarting, and a rebalance may land in the middle: ask the broker what it has.
    if (!stagedCommitLanded([...batch.offsets], await fetchCommitted(admin, config.groupId, config.topic), instanceId)) {
      log.warn({ token: batch.token }, 'the commit did not land: its records are read again');
      return handBack();
    }
    if (generation !== generationAtCommit) log.warn({ token: batch.token }, 'a rebalance completed while this commit was in flight; the commit landed');
    for (const [partition, offset] of batch.offsets) progress.committedUpTo(partition, offset);
    applyPause();
    checkDrained();
    return true;
  };

  return {
    chunks$,
    commit,
    discarded: () => discarded,
    joined: () => generation > 0,
    isCaughtUp: () => progress.isCaughtUp(),
    caughtUp$,
    maxOutstanding,
    lag: () => progress.lag(),
    outstanding: () => progress.outstanding(),
    pause(reason) {
      pauseReasons.add(reason);
      applyPause();
    },
    resume(reason) {
      pauseReasons.delete(reason);
      applyPause();
    },
    stop,
    async close() {
      if (connected) await consumer.disconnect();
      connected = false;
      await admin.disconnect();
    },
  };
}

/** The kafkajs consumer and admin of a source. */
function kafkaClientsFor(config: KafkaSourceConfig): KafkaSourceClients {
  const kafka = createKafkaClient(config.brokers, config.clientId ?? 'http-log-anonymizer', config.logger);
  // A short fetch long-poll: stopping (drain, shutdown) waits for the fetch in flight.
  return { consumer: kafka.consumer({ groupId: config.groupId, retry: { retries: 10 }, maxWaitTimeInMs: 500 }), admin: kafka.admin() };
}

/** Per partition: the last offset to consume, or nothing when there is nothing to do. */
function readDrainTargets(admin: OffsetsAdmin, config: KafkaSourceConfig, log: Logger): Promise<Map<number, number>> {
  return withKafkaRetry(async () => {
    try {
      await admin.connect();
      const [topicOffsets, groupOffsets] = await Promise.all([admin.fetchTopicOffsets(config.topic), admin.fetchOffsets({ groupId: config.groupId, topics: [config.topic] })]);
      const committedByPartition = new Map((groupOffsets[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      const targets = new Map<number, number>();
      for (const p of topicOffsets) {
        const high = Number(p.high);
        const start = Math.max(Number(p.low), committedByPartition.get(p.partition) ?? -1);
        if (start < high) targets.set(p.partition, high - 1);
      }
      log.info({ targets: Object.fromEntries(targets) }, 'drain: consuming up to the high-water marks seen at start');
      return targets;
    } catch (error) {
      await admin.disconnect().catch(() => {});
      throw error;
    }
  });
}

/** The group's committed offsets with their metadata, through a connected admin. */
function fetchCommitted(admin: OffsetsAdmin, groupId: string, topic: string): Promise<Map<number, { offset: number; metadata: string | null }>> {
  return withKafkaRetry(async () => {
    await admin.connect();
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((entry?.partitions ?? []).map((p) => [p.partition, { offset: Number(p.offset), metadata: p.metadata }]));
  });
}

/**
 * Whether the commit of a batch staged before a crash landed, from the group's committed
 * offsets and their metadata. It did if, for every partition the batch covers, the
 * committed offset is past the batch and either the last commit is this spool's, or the
 * partition's current owner started after the batch (so it never read the batch's records).
 */
export function stagedCommitLanded(
  offsets: ReadonlyArray<readonly [number, number]>,
  committed: ReadonlyMap<number, { readonly offset: number; readonly metadata: string | null }>,
  instanceId: string,
): boolean {
  for (const [partition, last] of offsets) {
    const entry = committed.get(partition);
    if (!entry || entry.offset < last + 1) return false;
    let metadata: Partial<CommitMetadata> = {};
    try {
      metadata = JSON.parse(entry.metadata ?? '{}') as Partial<CommitMetadata>;
    } catch {
      return false;
    }
    if (metadata.o === instanceId) continue;
    if (typeof metadata.s === 'number' && metadata.s >= last + 1) continue;
    return false;
  }
  return true;
}

/** Reads the group's committed offsets with their metadata (for `stagedCommitLanded`), with a short-lived admin client. */
export async function readCommittedWithMetadata(kafka: Kafka, groupId: string, topic: string): Promise<Map<number, { offset: number; metadata: string | null }>> {
  const admin = kafka.admin();
  try {
    return await fetchCommitted(admin, groupId, topic);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Retries an admin read while the broker says "try again" (a coordinator still loading
 * after a broker start, a leader moving): kafkajs's admin does not retry all of those.
 */
export async function withKafkaRetry<T>(read: () => Promise<T>, attempts = 12): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (!isTransientKafkaError(error) || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** attempt)));
    }
  }
}
