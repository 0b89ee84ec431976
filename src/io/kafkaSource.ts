/**
 * Wire protocol: the Kafka protocol through kafkajs 2.2 (consumer group, Fetch,
 * OffsetCommit, ListOffsets, OffsetFetch). Tested against Apache Kafka 3.9 in KRaft mode.
 *
 * - One consumer in group `groupId` on `topic`. A group with no committed offsets starts
 *   at the earliest retained offset (`fromBeginning`), so a first deployment skips nothing.
 * - Offsets are never auto-committed: `commit()` is called only after the data is stored.
 * - Each fetched partition batch becomes one `OffsetChunk`; the message values are handed
 *   over as they are (Cap'n Proto bytes), decoding happens downstream.
 * - Backpressure: when more than `maxOutstanding` messages have been handed over but not
 *   committed, every partition is paused; they resume below half of that.
 * - Drain mode: the high-water marks are read at start; the chunk stream completes once
 *   every partition has been handed over up to them.
 */
import { Kafka, logLevel as KafkaLogLevel, type Consumer, type LogEntry } from 'kafkajs';
import { Observable } from 'rxjs';
import type { Logger } from 'pino';
import type { OffsetChunk, PartitionOffsets, SourceMessage } from '../domain/batch.ts';

export interface KafkaSourceConfig {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly groupId: string;
  readonly clientId?: string;
  /** Complete once the high-water marks seen at start are consumed. */
  readonly drain?: boolean;
  /** Messages handed over but not yet committed before the partitions pause. Default 400 000. */
  readonly maxOutstanding?: number;
  readonly logger: Logger;
}

export interface KafkaSource {
  /** The chunks, one per fetched partition batch. Subscribe once. */
  readonly chunks$: Observable<OffsetChunk<SourceMessage>>;
  /** Commits `offset + 1` per partition. */
  commit(offsets: PartitionOffsets): Promise<void>;
  /** True when every partition heard from has nothing more to fetch right now. */
  isCaughtUp(): boolean;
  /** Messages handed over and not yet committed. */
  outstanding(): number;
  close(): Promise<void>;
}

export function createKafkaSource(config: KafkaSourceConfig): KafkaSource {
  const log = config.logger;
  const kafka = new Kafka({
    clientId: config.clientId ?? 'http-log-anonymizer',
    brokers: [...config.brokers],
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
  // A short fetch long-poll: stopping (drain, shutdown) waits for the fetch in flight.
  const consumer: Consumer = kafka.consumer({ groupId: config.groupId, retry: { retries: 10 }, maxWaitTimeInMs: 500 });
  const maxOutstanding = config.maxOutstanding ?? 400_000;
  const handedOver = new Map<number, number>();
  const committed = new Map<number, number>();
  const lag = new Map<number, number>();
  let paused = false;
  let connected = false;
  let closed = false;

  const outstanding = (): number => {
    let total = 0;
    for (const [partition, last] of handedOver) total += last - (committed.get(partition) ?? last);
    return total;
  };

  const applyBackpressure = (): void => {
    const count = outstanding();
    if (!paused && count > maxOutstanding) {
      paused = true;
      consumer.pause([{ topic: config.topic }]);
      log.info({ outstanding: count }, 'paused consumption: too much consumed and not yet stored');
    } else if (paused && count < maxOutstanding / 2) {
      paused = false;
      consumer.resume([{ topic: config.topic }]);
      log.info({ outstanding: count }, 'resumed consumption');
    }
  };

  const chunks$ = new Observable<OffsetChunk<SourceMessage>>((subscriber) => {
    let drainTargets: Map<number, number> | undefined;
    const checkDrained = (): void => {
      if (!drainTargets) return;
      for (const [partition, target] of drainTargets) {
        if ((handedOver.get(partition) ?? -1) < target) return;
      }
      log.info('drain: every partition consumed up to its high-water mark at start');
      consumer.pause([{ topic: config.topic }]);
      drainTargets = undefined;
      subscriber.complete();
    };

    const start = async (): Promise<void> => {
      await consumer.connect();
      connected = true;
      if (config.drain) drainTargets = await readDrainTargets();
      await consumer.subscribe({ topic: config.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (subscriber.closed || batch.messages.length === 0) return;
          const partition = batch.partition;
          const items: SourceMessage[] = batch.messages.map((message) => ({ partition, offset: Number(message.offset), value: message.value }));
          const lastOffset = Number(batch.lastOffset());
          handedOver.set(partition, lastOffset);
          if (!committed.has(partition)) committed.set(partition, Number(batch.firstOffset() ?? lastOffset) - 1);
          lag.set(partition, Math.max(0, Number(batch.highWatermark) - 1 - lastOffset));
          subscriber.next({ partition, items, lastOffset });
          applyBackpressure();
          checkDrained();
        },
      });
      checkDrained();
    };

    /** Per partition: the last offset to consume, or nothing when there is nothing to do. */
    const readDrainTargets = async (): Promise<Map<number, number>> => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const [topicOffsets, groupOffsets] = await Promise.all([
          admin.fetchTopicOffsets(config.topic),
          admin.fetchOffsets({ groupId: config.groupId, topics: [config.topic] }),
        ]);
        const committedByPartition = new Map((groupOffsets[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
        const targets = new Map<number, number>();
        for (const p of topicOffsets) {
          const high = Number(p.high);
          const start = Math.max(Number(p.low), committedByPartition.get(p.partition) ?? -1);
          if (start < high) targets.set(p.partition, high - 1);
        }
        log.info({ targets: Object.fromEntries(targets) }, 'drain: consuming up to the high-water marks seen at start');
        return targets;
      } finally {
        await admin.disconnect();
      }
    };

    start().catch((error: unknown) => subscriber.error(error));
    return () => {
      if (!closed) consumer.pause([{ topic: config.topic }]);
    };
  });

  return {
    chunks$,
    async commit(offsets) {
      const topicPartitions = [...offsets].map(([partition, offset]) => ({ topic: config.topic, partition, offset: String(offset + 1) }));
      await consumer.commitOffsets(topicPartitions);
      for (const [partition, offset] of offsets) committed.set(partition, offset);
      applyBackpressure();
    },
    isCaughtUp() {
      if (lag.size === 0) return true;
      for (const value of lag.values()) if (value > 0) return false;
      return true;
    },
    outstanding,
    async close() {
      closed = true;
      if (connected) await consumer.disconnect();
    },
  };
}
