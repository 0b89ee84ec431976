/**
 * Wire protocol: Kafka Produce (kafkajs 2.2, acks=all, idempotent producer) to the
 * dead-letter topic `KAFKA_DLQ_TOPIC` (default `http_log_dlq`).
 *
 * Each rejected message is produced with its original key and value bytes untouched, and
 * these headers:
 *   x-dlq-reason          the stable error code (ANON_DECODE, ANON_TIMESTAMP_RANGE, …)
 *   x-dlq-error           the error message (at most 1,000 characters)
 *   x-dlq-source-topic    the topic it was consumed from
 *   x-dlq-source-partition / x-dlq-source-offset   where it was
 *   x-dlq-at              when it was rejected (ISO 8601)
 * The value may hold a raw client address (it is the original message), so the DLQ topic
 * must have the same access rules as the source topic.
 *
 * The broker refuses a record batch over the topic's `max.message.bytes` (1 MB by
 * default), and kafkajs sends all of one call's messages for a partition as one batch. So
 * a burst is sent in calls of at most `maxMessageBytes` (read from the topic's config at
 * start), and a single message that could never fit is replaced by a small record that
 * keeps its place: no value, `x-dlq-reason: too_large_for_dlq`, `x-dlq-original-reason`
 * and `x-dlq-original-bytes`, and the source partition and offset, so an operator can
 * fetch the original from the source topic while it is retained.
 */
import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import type { RejectedMessage } from '../domain/batch.ts';

export interface DeadLetterSink {
  send(rejected: readonly RejectedMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** Kafka's broker default for `message.max.bytes`, used when the topic's own limit can't be read. */
export const BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** Room kept under the limit for the record batch's own header and per-record framing. */
const BATCH_OVERHEAD_BYTES = 1_024;
/** A record's framing beyond its key, value and headers (varints, attributes, deltas): an upper bound. */
const RECORD_OVERHEAD_BYTES = 32;
const MAX_ERROR_TEXT = 1_000;

export const TOO_LARGE_FOR_DLQ = 'too_large_for_dlq';
/** kafkajs's `ConfigResourceTypes.TOPIC` (a TypeScript enum its CommonJS build does not export by name). */
const TOPIC_RESOURCE = 2;

export interface DeadLetterPlanOptions {
  readonly sourceTopic: string;
  /** The DLQ topic's `max.message.bytes`. */
  readonly maxMessageBytes: number;
  /** When the messages were rejected (ISO 8601). */
  readonly at: string;
}

/** The Kafka record a rejected message becomes, or its small stand-in when it could never fit the topic. */
export function deadLetterRecord(rejected: RejectedMessage, options: DeadLetterPlanOptions): Message {
  const { message, error } = rejected;
  const headers = {
    'x-dlq-reason': error.code,
    'x-dlq-error': error.message.slice(0, MAX_ERROR_TEXT),
    'x-dlq-source-topic': options.sourceTopic,
    'x-dlq-source-partition': String(message.partition),
    'x-dlq-source-offset': String(message.offset),
    'x-dlq-at': options.at,
  };
  const record: Message = {
    key: message.key === undefined || message.key === null ? null : Buffer.from(message.key),
    value: message.value === null ? null : Buffer.from(message.value),
    headers,
  };
  const bytes = recordBytes(record);
  if (bytes + BATCH_OVERHEAD_BYTES <= options.maxMessageBytes) return record;
  return {
    key: null,
    value: null,
    headers: {
      ...headers,
      'x-dlq-reason': TOO_LARGE_FOR_DLQ,
      'x-dlq-error': `the rejected message (${bytes} bytes with its headers) is over the dead-letter topic's max.message.bytes (${options.maxMessageBytes}); it is still at this partition and offset of the source topic while that is retained`,
      'x-dlq-original-reason': error.code,
      'x-dlq-original-bytes': String(bytes),
    },
  };
}

/** Upper bound of a record's size inside a record batch. */
export function recordBytes(record: Message): number {
  let bytes = RECORD_OVERHEAD_BYTES + byteLength(record.key) + byteLength(record.value);
  for (const [name, value] of Object.entries(record.headers ?? {})) bytes += Buffer.byteLength(name) + byteLength(value as string | Buffer | undefined) + 10;
  return bytes;
}

function byteLength(value: string | Buffer | null | undefined | readonly unknown[]): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (Buffer.isBuffer(value)) return value.byteLength;
  return 0;
}

/**
 * The records in produce calls that each stay under the topic's limit, in order. Pure, so a
 * burst of any size is tested as a table; each record alone fits (see `deadLetterRecord`).
 */
export function planDeadLetters(rejected: readonly RejectedMessage[], options: DeadLetterPlanOptions): Message[][] {
  const budget = options.maxMessageBytes - BATCH_OVERHEAD_BYTES;
  const calls: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const one of rejected) {
    const record = deadLetterRecord(one, options);
    const size = recordBytes(record);
    if (current.length > 0 && bytes + size > budget) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0) calls.push(current);
  return calls;
}

/** The topic's `max.message.bytes`, or the broker default when it can't be read (no describe permission). */
export async function readMaxMessageBytes(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['max.message.bytes'] }] });
    const value = Number(described.resources[0]?.configEntries.find((entry) => entry.configName === 'max.message.bytes')?.configValue);
    return Number.isFinite(value) && value > BATCH_OVERHEAD_BYTES * 2 ? value : BROKER_DEFAULT_MAX_MESSAGE_BYTES;
  } catch {
    return BROKER_DEFAULT_MAX_MESSAGE_BYTES;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function createDeadLetterSink(kafka: Kafka, options: { topic: string; sourceTopic: string; maxMessageBytes?: number }): Promise<DeadLetterSink> {
  const maxMessageBytes = options.maxMessageBytes ?? (await readMaxMessageBytes(kafka, options.topic));
  // Idempotent: a retried produce after a timeout does not write the message twice.
  const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 10_000 } });
  await producer.connect();
  return {
    async send(rejected) {
      const calls = planDeadLetters(rejected, { sourceTopic: options.sourceTopic, maxMessageBytes, at: new Date().toISOString() });
      // One call at a time, in order: the records of a partition keep their source order.
      for (const messages of calls) await producer.send({ topic: options.topic, acks: -1, messages });
    },
    async close() {
      await producer.disconnect();
    },
  };
}
