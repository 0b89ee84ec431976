/**
 * On the real stack (Kafka, the ClickHouse engine, nginx):
 * - a burst of undecodable messages larger than the dead-letter topic's limit, and one
 *   message larger than that limit on its own, never stop ingestion: each is dead-lettered
 *   once (the oversized one as a `too_large_for_dlq` stand-in), every valid record stored once;
 * - fatal errors end the process with a code within a few seconds: a metrics port in use
 *   (exit 2), a spool directory that cannot be opened (exit 1), and no hang;
 * - a callback that throws inside an operator errors the pipeline (never RxJS's
 *   unhandled-error path), and what it left is stored once by the next drain.
 * Every run is bounded in time; every process a test starts is stopped by PID.
 */
import { createServer, type Server } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Registry } from 'prom-client';
import { config as rxjsConfig } from 'rxjs';
import { encodeRecord } from '../../src/domain/encodeRecord.ts';
import { compress } from '../../src/encode/compress.ts';
import { createClickHouseHttp } from '../../src/io/clickhouseHttp.ts';
import { createDeadLetterSink } from '../../src/io/deadLetterSink.ts';
import { createKafkaSource } from '../../src/io/kafkaSource.ts';
import { createKafkaClient } from '../../src/io/kafkaClient.ts';
import { Spool } from '../../src/io/spool.ts';
import { ProxySlots } from '../../src/pacing/proxySlots.ts';
import { runPipeline } from '../../src/streams/anonymizerPipeline.ts';
import { createPipelineMetrics } from '../../src/streams/pipelineMetrics.ts';
import { createTopicsAndWait, freePort } from '../../stack/index.ts';
import { runCli, startE2EStack, type E2EStack } from '../support/e2eStack.ts';
import { records, scenarioHelpers } from '../support/scenario.ts';

let stack: E2EStack;

beforeAll(async () => {
  stack = await startE2EStack('fatal');
});

afterAll(async () => {
  await stack?.stop();
});

const { scenario, produce, drain, expectExactlyOnce } = scenarioHelpers(() => stack);

/** Reads every message of a topic from the start, with a bound on time. */
async function readTopic(topic: string, expected: number): Promise<Array<{ value: Buffer | null; headers: Record<string, string> }>> {
  const kafka = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}`, maxBytes: 16 * 1024 * 1024 });
  const seen: Array<{ value: Buffer | null; headers: Record<string, string> }> = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${seen.length} of ${expected} messages of ${topic} in 60 s`)), 60_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)]));
          seen.push({ value: message.value, headers });
          if (seen.length >= expected) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    // Anything past the expected count would show up now.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

async function createTopicWith(topic: string, partitions: number, configEntries: Array<{ name: string; value: string }>): Promise<void> {
  const admin = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await createTopicsAndWait(admin, [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries }]);
  } finally {
    await admin.disconnect();
  }
}

/** Not Cap'n Proto: one segment claimed, of more words than the message holds. */
function garbage(index: number, bytes: number): Buffer {
  const value = Buffer.alloc(bytes, index % 251);
  value.writeUInt32LE(0, 0);
  value.writeUInt32LE(bytes, 4);
  return value;
}

describe('bursts and fatal errors', () => {
  it('6,000 undecodable messages (over 1 MB together) and one of 2 MB: each dead-lettered once, every valid record stored once', async () => {
    const s = await scenario('dlq_burst');
    // The source topic takes larger messages than the dead-letter topic (its default 1 MB).
    await createTopicWith(s.topic, 3, [{ name: 'max.message.bytes', value: String(4 * 1024 * 1024) }]);
    const valid = records(41, 300);
    const producer = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    const garbageCount = 6_000;
    try {
      const messages = [
        ...valid.slice(0, 150).map((record) => ({ value: Buffer.from(encodeRecord(record)) })),
        ...Array.from({ length: garbageCount }, (_, i) => ({ value: garbage(i, 200) })),
        { value: garbage(7, 2 * 1024 * 1024) },
        ...valid.slice(150).map((record) => ({ value: Buffer.from(encodeRecord(record)) })),
      ];
      // One partition for the burst, so the dead-letter producer meets it as one chunk.
      for (let i = 0; i < messages.length; i += 2_000) await producer.send({ topic: s.topic, messages: messages.slice(i, i + 2_000).map((m) => ({ ...m, partition: 0 })) });
    } finally {
      await producer.disconnect();
    }
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    await drain(s, proxy);
    await expectExactlyOnce(s, valid);
    const dead = await readTopic(s.dlq, garbageCount + 1);
    expect(dead.length).toBe(garbageCount + 1);
    const offsets = dead.map((m) => Number(m.headers['x-dlq-source-offset']));
    expect(new Set(offsets).size).toBe(garbageCount + 1);
    const tooLarge = dead.filter((m) => m.headers['x-dlq-reason'] === 'too_large_for_dlq');
    expect(tooLarge.length).toBe(1);
    expect(tooLarge[0]!.value).toBeNull();
    expect(Number(tooLarge[0]!.headers['x-dlq-original-bytes'])).toBeGreaterThan(2 * 1024 * 1024);
    // The others keep their original bytes.
    const kept = dead.filter((m) => m.headers['x-dlq-reason'] !== 'too_large_for_dlq');
    expect(kept.every((m) => m.value?.byteLength === 200)).toBe(true);
  });

  it('a callback that throws inside an operator (sealBatches onMeasured): the pipeline errors with it, nothing reaches the unhandled-error path, a rerun stores every record once', async () => {
    const s = await scenario('throwing_callback');
    const expected = await produce(s, 43, 3_000);
    const logger = pino({ level: 'silent' });
    const registry = new Registry();
    const metrics = createPipelineMetrics(registry);
    const boom = new Error('a metrics callback threw');
    // The body-fit's onMeasured callback reports every measurement to this counter.
    (metrics.bodyMeasurements as unknown as { inc: () => void }).inc = () => {
      throw boom;
    };
    const unhandled: unknown[] = [];
    rxjsConfig.onUnhandledError = (error) => unhandled.push(error);
    const kafka = createKafkaClient({ brokers: [stack.brokers], clientId: 'throwing-callback-dlq' }, logger);
    const spool = await Spool.open({ dir: s.spoolDir, topic: s.topic, logger });
    const source = createKafkaSource({ brokers: [stack.brokers], topic: s.topic, groupId: `faults-${s.name}`, drain: true, maxOutstanding: 200_000, logger });
    const deadLetters = await createDeadLetterSink(kafka, { topic: s.dlq, sourceTopic: s.topic });
    const clickhouse = createClickHouseHttp({ url: stack.clickhouseUrl, user: 'default', password: '', database: s.database });
    try {
      const pipeline = runPipeline(
        { source, deadLetters, spool, clickhouse, slots: new ProxySlots({ minIntervalMs: 200, marginMs: 0 }), compress: (body) => compress('zstd', 3, body), codec: 'zstd', maxBodyBytes: 32 * 1024, spoolMaxBytes: 1 << 30, logger, metrics },
        { drain: true },
      );
      await expect(Promise.race([pipeline.done, new Promise((_, reject) => setTimeout(() => reject(new Error('the pipeline neither failed nor finished in 60 s')), 60_000))])).rejects.toBe(boom);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      rxjsConfig.onUnhandledError = null;
      await Promise.allSettled([source.close(), deadLetters.close(), clickhouse.close()]);
      await spool.close();
    }
    // Whatever was committed is in the spool; the rest is still in Kafka: a clean drain stores all of it once.
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    await drain(s, proxy);
    await expectExactlyOnce(s, expected);
  });

  it('METRICS_PORT in use: exit 2 within a few seconds, one line naming it', async () => {
    const s = await scenario('port_in_use');
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    try {
      const result = await runCli(['run'], { ...s.env(stack.clickhouseUrl), METRICS_PORT: String(port), METRICS_HOST: '127.0.0.1' }, 30_000);
      expect(result.status).toBe(2);
      expect(result.seconds).toBeLessThan(15);
      const lines = result.stderr.split('\n').filter(Boolean);
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain('METRICS_PORT');
    } finally {
      holder.close();
    }
  });

  it('a spool directory that cannot be opened: exit 1 with the spool error code, no hang', async () => {
    const s = await scenario('bad_spool');
    const notADirectory = join(stack.dir, 'spool-is-a-file');
    writeFileSync(notADirectory, 'not a directory');
    const result = await runCli(['run'], { ...s.env(stack.clickhouseUrl), SPOOL_DIR: notADirectory }, 30_000);
    expect(result.status).toBe(1);
    expect(result.seconds).toBeLessThan(15);
    expect(result.stderr.split('\n').filter(Boolean).length).toBe(1);
  });
});
