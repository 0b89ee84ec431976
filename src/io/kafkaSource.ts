/**
 * Wire protocol: the Kafka protocol through kafkajs 2.2 (consumer group, Fetch,
 * OffsetCommit with metadata, ListOffsets, OffsetFetch), on a client built by
 * src/io/kafkaClient.ts (TLS, SASL). Tested against Apache Kafka 4.4 and 3.9 in KRaft mode.
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
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { createKafkaClient, type KafkaClientSettings } from './kafkaClient.ts';
import { BehaviorSubject, distinctUntilChanged, Observable, type Subscriber } from 'rxjs';
import type { Logger } from 'pino';
import type { OffsetChunk, PartitionOffsets, SourceMessage } from '../domain/batch.ts';
import { PartitionProgress, shouldPause } from '../domain/partitionProgress.ts';

/** The connection (brokers, client id, TLS, SASL: src/io/kafkaClient.ts) and what to consume. */
export interface KafkaSourceConfig extends KafkaClientSettings {
  readonly topic: string;
  readonly groupId: string;
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
  return new GroupSource(config, clients);
}

/** A fetched partition batch, as kafkajs's `eachBatch` hands it over (the fields used). */
interface FetchedBatch {
  readonly partition: number;
  readonly messages: ReadonlyArray<{ readonly offset: string; readonly key: Buffer | null; readonly value: Buffer | null }>;
  readonly highWatermark: string;
  lastOffset(): string;
  firstOffset(): string | null;
}

/** The source over one consumer-group member; every decision is a small method. */
class GroupSource implements KafkaSource {
  readonly chunks$: Observable<OffsetChunk<SourceMessage>>;
  readonly caughtUp$: Observable<boolean>;
  readonly maxOutstanding: number;
  readonly #config: KafkaSourceConfig;
  readonly #log: Logger;
  readonly #consumer: GroupConsumer;
  readonly #admin: OffsetsAdmin;
  readonly #progress = new PartitionProgress();
  readonly #pauseReasons = new Set<string>();
  readonly #caughtUp = new BehaviorSubject(true);
  #paused = false;
  #connected = false;
  #generation = 0;
  #discarded = 0;
  #subscriber: Subscriber<OffsetChunk<SourceMessage>> | undefined;
  #drainTargets: Map<number, number> | undefined;

  constructor(config: KafkaSourceConfig, clients: KafkaSourceClients) {
    this.#config = config;
    this.#log = config.logger;
    this.#consumer = clients.consumer;
    this.#admin = clients.admin;
    this.maxOutstanding = config.maxOutstanding ?? 400_000;
    this.caughtUp$ = this.#caughtUp.pipe(distinctUntilChanged());
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, (event) => this.#joined(event.payload.memberAssignment[config.topic] ?? [], event.payload.isLeader));
    // A crash kafkajs does not restart from (bad credentials, a non-retriable error) would
    // otherwise stop consumption without a word.
    this.#consumer.on(this.#consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      this.#log.warn({ err: error.message, restart }, 'the Kafka consumer crashed');
      if (!restart) this.#subscriber?.error(error);
    });
    this.chunks$ = new Observable<OffsetChunk<SourceMessage>>((observer) => {
      this.#subscriber = observer;
      this.#start().catch((error: unknown) => observer.error(error));
      return () => {
        if (this.#subscriber === observer) this.#subscriber = undefined;
        this.#pauseQuietly();
      };
    });
  }

  async #start(): Promise<void> {
    await this.#consumer.connect();
    this.#connected = true;
    if (this.#config.drain) this.#drainTargets = await readDrainTargets(this.#admin, this.#config, this.#log);
    await this.#consumer.subscribe({ topic: this.#config.topic, fromBeginning: true });
    await this.#consumer.run({ autoCommit: false, eachBatch: async ({ batch }) => this.#fetched(batch) });
    // A pause asked for before the consumer ran (a spool already full at start) applies now.
    this.#applyPause();
    this.#checkDrained();
  }

  #joined(partitions: readonly number[], leader: boolean): void {
    this.#generation++;
    this.#progress.reset();
    this.#caughtUp.next(true);
    this.#log.info({ generation: this.#generation, partitions, leader }, 'joined the consumer group');
    this.#applyPause(true);
  }

  #fetched(batch: FetchedBatch): void {
    if (!this.#subscriber || batch.messages.length === 0) return;
    const partition = batch.partition;
    const items: SourceMessage[] = batch.messages.map((message) => ({ partition, offset: Number(message.offset), key: message.key, value: message.value }));
    const lastOffset = Number(batch.lastOffset());
    this.#progress.fetched(partition, Number(batch.firstOffset() ?? lastOffset), lastOffset, Number(batch.highWatermark));
    const caughtUp = this.#progress.isCaughtUp();
    this.#log.debug({ partition, messages: items.length, lastOffset, highWatermark: Number(batch.highWatermark), caughtUp }, 'fetched');
    this.#caughtUp.next(caughtUp);
    this.#subscriber.next({ partition, items, lastOffset, generation: this.#generation });
    this.#applyPause();
    this.#checkDrained();
  }

  /**
   * Pauses or resumes to match the reasons. `force` re-applies the state even if it looks
   * unchanged: kafkajs keeps its own pause state across a rebalance but loses it when it
   * restarts the consumer. pause()/resume() throw while kafkajs has no group (before run(),
   * during a restart): the state is then applied on the next call.
   */
  #applyPause(force = false): void {
    const pause = shouldPause(this.#pauseReasons, this.#progress.outstanding(), this.maxOutstanding);
    if (!this.#connected || (pause === this.#paused && !force)) return;
    try {
      if (pause) this.#consumer.pause([{ topic: this.#config.topic }]);
      else this.#consumer.resume([{ topic: this.#config.topic }]);
    } catch {
      return;
    }
    if (pause !== this.#paused) this.#log.info({ reasons: [...this.#pauseReasons], outstanding: this.#progress.outstanding() }, pause ? 'paused consumption' : 'resumed consumption');
    this.#paused = pause;
  }

  /** Pausing before `run()` has set the group up throws; then there is nothing to pause. */
  #pauseQuietly(): void {
    if (!this.#connected) return;
    try {
      this.#consumer.pause([{ topic: this.#config.topic }]);
    } catch {
      // not running yet
    }
  }

  #checkDrained(): void {
    if (!this.#drainTargets || !this.#subscriber || !this.#progress.reached(this.#drainTargets)) return;
    this.#log.info('drain: every partition consumed up to its high-water mark at start');
    this.#drainTargets = undefined;
    this.stop();
  }

  /** A batch whose records will be read again (an old generation, a refused or lost commit). */
  #handBack(): false {
    this.#discarded++;
    this.#applyPause(true);
    return false;
  }

  async commit(batch: CommittableBatch, instanceId: string): Promise<boolean> {
    // Checked right before the request: after a rebalance, kafkajs reads every partition
    // again from its committed offset, so data of an older generation must not be committed.
    if (batch.generation !== undefined && batch.generation !== this.#generation) {
      this.#log.warn({ token: batch.token, batchGeneration: batch.generation, generation: this.#generation }, 'not committing a batch read before the latest rebalance: its records are read again');
      return this.#handBack();
    }
    const generationAtCommit = this.#generation;
    try {
      await this.#consumer.commitOffsets(this.#commitRequest(batch, instanceId));
    } catch (error) {
      if (!isStaleGroupError(error)) throw error;
      this.#log.warn({ token: batch.token, err: (error as Error).message }, 'commit refused after a rebalance: its records are read again by their owner');
      return this.#handBack();
    }
    // kafkajs resolves commitOffsets without sending anything while its consumer is
    // restarting, and a rebalance may land in the middle: ask the broker what it has.
    if (!stagedCommitLanded([...batch.offsets], await fetchCommitted(this.#admin, this.#config.groupId, this.#config.topic), instanceId)) {
      this.#log.warn({ token: batch.token }, 'the commit did not land: its records are read again');
      return this.#handBack();
    }
    if (this.#generation !== generationAtCommit) this.#log.warn({ token: batch.token }, 'a rebalance completed while this commit was in flight; the commit landed');
    for (const [partition, offset] of batch.offsets) this.#progress.committedUpTo(partition, offset);
    this.#applyPause();
    this.#checkDrained();
    return true;
  }

  /** `offset + 1` per partition, with the metadata a restart settles staged batches by. */
  #commitRequest(batch: CommittableBatch, instanceId: string): Array<{ topic: string; partition: number; offset: string; metadata: string }> {
    return [...batch.offsets].map(([partition, offset]) => {
      const metadata: CommitMetadata = { o: instanceId, s: this.#progress.since(partition), t: batch.token };
      return { topic: this.#config.topic, partition, offset: String(offset + 1), metadata: JSON.stringify(metadata) };
    });
  }

  discarded(): number {
    return this.#discarded;
  }
  joined(): boolean {
    return this.#generation > 0;
  }
  isCaughtUp(): boolean {
    return this.#progress.isCaughtUp();
  }
  lag(): ReadonlyMap<number, number> {
    return this.#progress.lag();
  }
  outstanding(): number {
    return this.#progress.outstanding();
  }
  pause(reason: string): void {
    this.#pauseReasons.add(reason);
    this.#applyPause();
  }
  resume(reason: string): void {
    this.#pauseReasons.delete(reason);
    this.#applyPause();
  }

  stop(): void {
    this.#pauseQuietly();
    const current = this.#subscriber;
    this.#subscriber = undefined;
    current?.complete();
  }

  async close(): Promise<void> {
    if (this.#connected) await this.#consumer.disconnect();
    this.#connected = false;
    await this.#admin.disconnect();
  }
}

/** The kafkajs consumer and admin of a source. */
function kafkaClientsFor(config: KafkaSourceConfig): KafkaSourceClients {
  const kafka = createKafkaClient(config, config.logger);
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
