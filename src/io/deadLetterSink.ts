/**
 * Wire protocol: Kafka Produce (kafkajs 2.2, acks=all, idempotent producer) to the
 * dead-letter topic `KAFKA_DLQ_TOPIC` (default `http_log_dlq`).
 *
 * Each rejected message is produced with its original key and value bytes untouched, and
 * these headers:
 *   x-dlq-reason          the stable error code (ANON_DECODE, ANON_TIMESTAMP_RANGE, …)
 *   x-dlq-error           the error message
 *   x-dlq-source-topic    the topic it was consumed from
 *   x-dlq-source-partition / x-dlq-source-offset   where it was
 *   x-dlq-at              when it was rejected (ISO 8601)
 * The value may hold a raw client address (it is the original message), so the DLQ topic
 * must have the same access rules as the source topic.
 */
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type { RejectedMessage } from '../domain/batch.ts';

export interface DeadLetterSink {
  send(rejected: readonly RejectedMessage[]): Promise<void>;
  close(): Promise<void>;
}

export async function createDeadLetterSink(kafka: Kafka, options: { topic: string; sourceTopic: string }): Promise<DeadLetterSink> {
  // Idempotent: a retried produce after a timeout does not write the message twice.
  const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1, retry: { retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 10_000 } });
  await producer.connect();
  return {
    async send(rejected) {
      const at = new Date().toISOString();
      await producer.send({
        topic: options.topic,
        acks: -1,
        messages: rejected.map(({ message, error }) => ({
          key: message.key === undefined || message.key === null ? null : Buffer.from(message.key),
          value: message.value === null ? null : Buffer.from(message.value),
          headers: {
            'x-dlq-reason': error.code,
            'x-dlq-error': error.message,
            'x-dlq-source-topic': options.sourceTopic,
            'x-dlq-source-partition': String(message.partition),
            'x-dlq-source-offset': String(message.offset),
            'x-dlq-at': at,
          },
        })),
      });
    },
    async close() {
      await producer.disconnect();
    },
  };
}
