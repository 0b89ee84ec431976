import { Command, InvalidArgumentError } from 'commander';
import { encodeRecord } from '../domain/encodeRecord.ts';
import { ConfigError } from '../errors.ts';
import type { SourceRecord } from '../domain/encodeRecord.ts';
import { createKafkaProducer } from '../io/kafkaProducer.ts';
import { realisticRecords } from '../synthetic/realisticDataset.ts';
import { uniformRecords } from '../synthetic/uniformDataset.ts';
import type { DatasetOptions } from '../synthetic/uniformDataset.ts';
import { progress } from './progress.ts';
import { configFrom, withSettings } from './settings.ts';
import { KAFKA_CONNECTION_SETTINGS } from '../config.ts';
import { checkKafkaReachable } from '../io/kafkaClient.ts';
import { createLogger } from '../io/logger.ts';

const positive = (name: string) => (value: string): number => {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return number;
};

/** The generators `--dataset` chooses from (README "Datasets" describes their distributions). */
const DATASETS: Readonly<Record<string, (options: DatasetOptions) => Generator<SourceRecord>>> = {
  uniform: uniformRecords,
  realistic: realisticRecords,
};

/**
 * Checked while commander parses, so that a wrong name gets commander's own error line
 * and usage hint (an InvalidArgumentError thrown later, inside the action, exits 2 silently).
 */
function datasetName(value: string): string {
  if (!Object.hasOwn(DATASETS, value)) {
    throw new InvalidArgumentError(`--dataset must be one of ${Object.keys(DATASETS).join(', ')}`);
  }
  return value;
}

/** Messages per Kafka produce request: large enough to be cheap, small enough to pace smoothly. */
const SEND_BATCH = 500;

export function produceCommand(): Command {
  const command = new Command('produce')
    .description("Write synthetic HTTP log records to Kafka as Cap'n Proto, standing in for the edge servers.")
    .option('--rate <records/s>', 'records per second (the reference producer: 200)', positive('--rate'), 200)
    .requiredOption('--count <n>', 'how many records to write', positive('--count'))
    .option('--seed <n>', 'PRNG seed: the same seed writes the same records', '1')
    .option('--dataset <name>', 'uniform: the prior art generator; realistic: skewed CDN traffic (Zipf resources, URLs and /24s)', datasetName, 'uniform')
    .option('--start <ms>', 'timestamp of the first record, ms since the epoch (default: now)');
  withSettings(command, [...KAFKA_CONNECTION_SETTINGS, 'KAFKA_TOPIC', 'LOG_LEVEL']);
  command.addHelpText(
    'after',
    `
Examples:
  anonymizer produce --count 10000                 10k records at 200/s
  anonymizer produce --rate 5000 --count 100000 --seed 7
  anonymizer produce --dataset realistic --count 10000   skewed traffic instead of uniform noise`,
  );
  command.action(async (options: { rate: number; count: number; seed: string; dataset: string; start?: string }, self: Command) => {
    const config = configFrom(self);
    const generate = DATASETS[datasetName(options.dataset)]!;
    if (!/^\d+$/.test(options.seed)) throw new ConfigError('--seed', `--seed must be a non-negative integer (got ${JSON.stringify(options.seed)})`);
    const count = Math.floor(options.count);
    const startMillis = options.start === undefined ? Date.now() : Number(options.start);
    const records = generate({ seed: BigInt(options.seed), startMillis, rate: options.rate });
    const logger = createLogger(config.logLevel).child({ component: 'producer' });
    await checkKafkaReachable(config.kafka, logger);
    const producer = await createKafkaProducer({ ...config.kafka, topic: config.kafkaTopic }, logger);
    const began = Date.now();
    const bar = progress('produce', count, { unit: 'records' });
    let sent = 0;
    try {
      while (sent < count) {
        const size = Math.min(SEND_BATCH, count - sent, Math.max(1, Math.round(options.rate / 10)));
        const values: Buffer[] = [];
        for (let i = 0; i < size; i++) values.push(encodeRecord(records.next().value!));
        await producer.send(values);
        sent += size;
        // Hold the rate: the next send waits until the records sent so far were due.
        const dueAt = began + (sent / options.rate) * 1000;
        const wait = dueAt - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        bar.update(sent);
      }
    } catch (error) {
      // End the progress line, so that the error is printed on a line of its own.
      bar.done();
      throw error;
    } finally {
      await producer.close();
    }
    // On a TTY the summary replaces the progress line; without one (a pipe, a log) it is printed alone.
    const summary = `${sent} records to ${config.kafkaTopic} in ${((Date.now() - began) / 1000).toFixed(1)} s`;
    if (bar.active) bar.done(summary);
    else process.stderr.write(`produce: ${summary}\n`);
  });
  return command;
}
