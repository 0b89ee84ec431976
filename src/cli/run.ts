import { Command } from 'commander';
import { Subscription } from 'rxjs';
import { ProxySlots } from '../domain/proxySlots.ts';
import { compress } from '../encode/compress.ts';
import { createClickHouseHttp } from '../io/clickhouseHttp.ts';
import { createKafkaSource } from '../io/kafkaSource.ts';
import { createLogger } from '../io/logger.ts';
import { anonymizerPipeline } from '../streams/anonymizerPipeline.ts';
import { createPipelineMetrics } from '../streams/pipelineMetrics.ts';
import { SETTING_NAMES } from '../config.ts';
import { configFrom, withSettings } from './settings.ts';

export function runCommand(): Command {
  const command = new Command('run')
    .description('Consume the topic, anonymize, and store every record in ClickHouse through the proxy.')
    .option('--drain', 'consume up to the high-water marks seen at start, store and commit all of it, then exit 0');
  withSettings(command, SETTING_NAMES);
  command.addHelpText(
    'after',
    `
Offsets are committed only after ClickHouse has stored the rows. Requests are paced to one
per PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS; a 503 from the proxy waits for the next slot.

Examples:
  anonymizer run
  anonymizer run --drain --clickhouse-url http://127.0.0.1:8124
  PROXY_MIN_INTERVAL_MS=1000 anonymizer run --drain       (a proxy at 60r/m)`,
  );
  command.action(async (options: { drain?: boolean }, self: Command) => {
    await run(self, options.drain === true);
  });
  return command;
}

async function run(command: Command, drain: boolean): Promise<void> {
  const config = configFrom(command);
  const logger = createLogger(config.logLevel);
  const metrics = createPipelineMetrics();
  const source = createKafkaSource({ brokers: config.kafkaBrokers, topic: config.kafkaTopic, groupId: config.kafkaGroupId, drain, logger: logger.child({ component: 'kafkaSource' }) });
  const clickhouse = createClickHouseHttp({
    url: config.clickhouseUrl,
    user: config.clickhouseUser,
    password: config.clickhousePassword,
    database: config.clickhouseDatabase,
  });
  const slots = new ProxySlots({ minIntervalMs: config.proxyMinIntervalMs, marginMs: config.proxyMarginMs });
  const started = Date.now();
  let batches = 0;
  let rows = 0;
  logger.info(
    { topic: config.kafkaTopic, group: config.kafkaGroupId, clickhouse: config.clickhouseUrl, intervalMs: config.proxyMinIntervalMs, maxBodyBytes: config.proxyMaxBodyBytes, codec: config.insertCodec, level: config.insertLevel, drain },
    'starting',
  );

  const pipeline = anonymizerPipeline({
    source,
    clickhouse,
    slots,
    compress: (body) => compress(config.insertCodec, config.insertLevel, body),
    codec: config.insertCodec,
    maxBodyBytes: config.proxyMaxBodyBytes,
    logger: logger.child({ component: 'pipeline' }),
    metrics,
  });

  let subscription = Subscription.EMPTY;
  const finished = new Promise<void>((resolve, reject) => {
    subscription = pipeline.subscribe({
      next: (batch) => {
        batches += batch.rowCount > 0 ? 1 : 0;
        rows += batch.rowCount;
      },
      error: reject,
      complete: resolve,
    });
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    // Nothing is committed past what ClickHouse stored, so what is in memory now is read
    // again by the next run.
    logger.info({ signal }, 'stopping: uncommitted records will be consumed again by the next run');
    subscription.unsubscribe();
    void Promise.allSettled([source.close(), clickhouse.close()]).then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));

  try {
    await finished;
  } finally {
    await Promise.allSettled([source.close(), clickhouse.close()]);
  }
  logger.info({ batches, rows, seconds: Math.round((Date.now() - started) / 100) / 10 }, 'drained: everything consumed at start is stored and committed');
}
