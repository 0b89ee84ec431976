// The local KRaft broker: it starts within its bound, creates the default topics with
// their partition counts, carries a message, restarts on its existing storage, and
// stops without leaving the JVM behind.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { PINNED_KAFKA_VERSION, freePort, isAlive, isRunning, pidFileOf, startKafka } from '../../stack/index.ts';
import type { ServiceHandle } from '../../stack/index.ts';

describe('kafka (KRaft on the JVM)', () => {
  let dir: string;
  let port: number;
  let controllerPort: number;
  let kafka: ServiceHandle & { brokers: string; version: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stack-kafka-'));
    port = await freePort();
    controllerPort = await freePort();
    kafka = await startKafka({ dir, port, controllerPort });
  }, 90_000);

  afterAll(async () => {
    await kafka?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('runs the pinned version, and its JVM output has no log4j error (log4j-core gets a config)', () => {
    expect(kafka.version).toBe(process.env.KAFKA_VERSION || PINNED_KAFKA_VERSION);
    // Without -Dlog4j2.configurationFile, Kafka 4.x's log4j-core prints "main ERROR Reconfiguration failed".
    expect(readFileSync(join(dir, 'kafka.log'), 'utf8')).not.toMatch(/\bERROR\b/);
  });

  it('creates the default topics and carries a message', async () => {
    const client = new Kafka({ clientId: 'stack-test', brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: ['http_log', 'http_log_dlq'] });
      const partitions = Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]));
      expect(partitions).toEqual({ http_log: 3, http_log_dlq: 1 });
    } finally {
      await admin.disconnect();
    }
    const producer = client.producer();
    await producer.connect();
    await producer.send({ topic: 'http_log', messages: [{ value: Buffer.from([0, 1, 2, 255]), partition: 0 }] });
    await producer.disconnect();
    const admin2 = client.admin();
    await admin2.connect();
    const offsets = await admin2.fetchTopicOffsets('http_log');
    await admin2.disconnect();
    expect(offsets.find((o) => o.partition === 0)?.high).toBe('1');
  }, 30_000);

  it('stops, and restarts on its existing storage', async () => {
    const pid = kafka.pid;
    await kafka.stop();
    expect(isAlive(pid)).toBe(false);
    expect(isRunning(pidFileOf(dir, 'kafka'))).toBeUndefined();
    kafka = await startKafka({ dir, port, controllerPort, topics: [{ name: 'extra', partitions: 2 }] });
    const admin = new Kafka({ clientId: 'stack-test', brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    expect(topics).toEqual(expect.arrayContaining(['http_log', 'http_log_dlq', 'extra']));
  }, 90_000);
});
