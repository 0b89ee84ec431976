/**
 * Wire protocol: the Kafka protocol through kafkajs 2.2 (Produce with acks=all, no
 * compression), one Cap'n Proto message per Kafka message, no key (the default
 * partitioner spreads them over the partitions).
 */
import { Kafka, logLevel as KafkaLogLevel, Partitioners, type Producer } from 'kafkajs';

export interface KafkaProducerConfig {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly clientId?: string;
}

export interface RecordProducer {
  send(values: readonly Buffer[]): Promise<void>;
  close(): Promise<void>;
}

export async function createKafkaProducer(config: KafkaProducerConfig): Promise<RecordProducer> {
  const kafka = new Kafka({ clientId: config.clientId ?? 'http-log-producer', brokers: [...config.brokers], logLevel: KafkaLogLevel.ERROR });
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
