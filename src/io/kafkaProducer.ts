/**
 * Wire protocol: the Kafka protocol through kafkajs 2.2 (Produce with acks=all, no
 * compression), one Cap'n Proto message per Kafka message, no key (the default
 * partitioner spreads them over the partitions), on a client built by
 * src/io/kafkaClient.ts (TLS, SASL).
 */
import { Partitioners, type Producer } from 'kafkajs';
import { createKafkaClient, type KafkaClientSettings } from './kafkaClient.ts';
import type { Logger } from './logger.ts';

export interface KafkaProducerConfig extends KafkaClientSettings {
  readonly topic: string;
}

export interface RecordProducer {
  send(values: readonly Buffer[]): Promise<void>;
  close(): Promise<void>;
}

export async function createKafkaProducer(config: KafkaProducerConfig, log: Logger): Promise<RecordProducer> {
  const kafka = createKafkaClient(config, log);
  const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  return {
    async send(values) {
      await producer.send({ topic: config.topic, acks: -1, messages: values.map((value) => ({ value })) });
    },
    async close() {
      await producer.disconnect();
    },
  };
}
