import { access, constants } from 'node:fs/promises';
import { Command } from 'commander';
import { collectDefaultMetrics, Gauge, Registry, type Counter } from 'prom-client';
import { ProxySlots } from '../domain/proxySlots.ts';
import { compress } from '../encode/compress.ts';
import { SETTING_NAMES, type AppConfig } from '../config.ts';
import { createClickHouseHttp } from '../io/clickhouseHttp.ts';
import { createDeadLetterSink } from '../io/deadLetterSink.ts';
import { createKafkaClient, createKafkaSource, readCommittedWithMetadata, stagedCommitLanded } from '../io/kafkaSource.ts';
import { createLogger, type Logger } from '../io/logger.ts';
import { Spool } from '../io/spool.ts';
import { startMetricsServer } from '../io/metricsServer.ts';
import { MAX_OUTSTANDING_ROWS, runPipeline } from '../streams/anonymizerPipeline.ts';
import { createPipelineMetrics, type PipelineMetrics } from '../streams/pipelineMetrics.ts';
import { configFrom, withSettings } from './settings.ts';

/** How long a graceful stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 15_000;

export function runCommand(): Command {
  const command = new Command('run')
    .description('Consume the topic, anonymize, and store every record in ClickHouse through the proxy.')
    .option('--drain', 'consume up to the high-water marks seen at start, store and commit all of it, send the whole spool, then exit 0');
  withSettings(command, SETTING_NAMES);
  command.addHelpText(
    'after',
    `
Records leave Kafka as soon as they are durable in the spool (SPOOL_DIR), and their
offsets are committed then; the spool is sent through the proxy one request per
PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS, each batch retried with the same bytes and
dedup token until ClickHouse has it. SIGINT/SIGTERM: the open batch is persisted and
committed, and what is spooled is sent by the next run.

Examples:
  anonymizer run
  anonymizer run --drain --clickhouse-url http://127.0.0.1:8124
  PROXY_MIN_INTERVAL_MS=1000 anonymizer run --drain       (a proxy at 60r/m)`,
  );
  command.action(async (options: { drain?: boolean }, self: Command) => {
    await run(configFrom(self), options.drain === true);
  });
  return command;
}

export async function openSpool(config: AppConfig, logger: Logger): Promise<Spool> {
  const kafka = createKafkaClient(config.kafkaBrokers, 'http-log-anonymizer-spool', logger.child({ component: 'kafka' }));
  let committed: Awaited<ReturnType<typeof readCommittedWithMetadata>> | undefined;
  return Spool.open({
    dir: config.spoolDir,
    topic: config.kafkaTopic,
    logger: logger.child({ component: 'spool' }),
    // Only asked when a crash left a staged batch: read the group's commits once.
    resolveStaged: async (header, instanceId) => {
      committed ??= await readCommittedWithMetadata(kafka, config.kafkaGroupId, config.kafkaTopic);
      return stagedCommitLanded(header.offsets, committed, instanceId) ? 'publish' : 'discard';
    },
  });
}

async function run(config: AppConfig, drain: boolean): Promise<void> {
  const logger = createLogger(config.logLevel);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'anonymizer_' });
  const metrics = createPipelineMetrics(registry);
  const spool = await openSpool(config, logger);
  const source = createKafkaSource({
    brokers: config.kafkaBrokers,
    topic: config.kafkaTopic,
    groupId: config.kafkaGroupId,
    drain,
    maxOutstanding: MAX_OUTSTANDING_ROWS,
    logger: logger.child({ component: 'kafkaSource' }),
  });
  const kafka = createKafkaClient(config.kafkaBrokers, 'http-log-anonymizer-dlq', logger.child({ component: 'deadLetters' }));
  const deadLetters = await createDeadLetterSink(kafka, { topic: config.kafkaDlqTopic, sourceTopic: config.kafkaTopic });
  const clickhouse = createClickHouseHttp({ url: config.clickhouseUrl, user: config.clickhouseUser, password: config.clickhousePassword, database: config.clickhouseDatabase });
  const slots = new ProxySlots({ minIntervalMs: config.proxyMinIntervalMs, marginMs: config.proxyMarginMs });
  new Gauge({
    name: 'anonymizer_consumer_lag',
    help: 'Per partition: the high-water mark minus the next offset to fetch, as last seen',
    labelNames: ['partition'],
    registers: [registry],
    collect() {
      for (const [partition, lag] of source.lag()) this.set({ partition: String(partition) }, lag);
    },
  });
  new Gauge({
    name: 'anonymizer_next_slot_seconds',
    help: 'Seconds until the proxy may take the next request',
    registers: [registry],
    collect() {
      this.set(slots.msUntilNext() / 1000);
    },
  });
  const metricsServer =
    config.metricsPort === 0
      ? undefined
      : await startMetricsServer({
          host: config.metricsHost,
          port: config.metricsPort,
          registry,
          readiness: async () => {
            if (!source.joined()) return 'the consumer has not joined its group yet';
            try {
              await access(config.spoolDir, constants.W_OK);
            } catch {
              return `the spool ${config.spoolDir} is not writable`;
            }
            // A full disk: consumption is paused until a batch can be written again.
            const disk = spool.diskProblem();
            if (disk) return disk.message;
            return undefined;
          },
        });
  const started = Date.now();
  logger.info(
    {
      topic: config.kafkaTopic,
      group: config.kafkaGroupId,
      clickhouse: config.clickhouseUrl,
      intervalMs: config.proxyMinIntervalMs,
      maxBodyBytes: config.proxyMaxBodyBytes,
      codec: config.insertCodec,
      level: config.insertLevel,
      spool: config.spoolDir,
      spooled: spool.stats(),
      metrics: metricsServer ? `http://${config.metricsHost}:${metricsServer.port}/metrics` : 'off',
      drain,
    },
    'starting',
  );

  const pipeline = runPipeline(
    {
      source,
      deadLetters,
      spool,
      clickhouse,
      slots,
      compress: (body) => compress(config.insertCodec, config.insertLevel, body),
      codec: config.insertCodec,
      maxBodyBytes: config.proxyMaxBodyBytes,
      spoolMaxBytes: config.spoolMaxBytes,
      logger: logger.child({ component: 'pipeline' }),
      metrics,
    },
    { drain },
  );

  // One status line a minute: is it keeping up, and is memory flat? Counts are for the last minute.
  let previous = { consumed: 0, rowsStored: 0, requests: 0, storedRequests: 0, bodyBytes: 0 };
  const status = setInterval(() => {
    void statusTotals(metrics).then((now) => {
      const memory = process.memoryUsage();
      const mib = (bytes: number) => Math.round(bytes / 1048576);
      const stored = now.storedRequests - previous.storedRequests;
      logger.info(
        {
          rowsIn: now.consumed - previous.consumed,
          rowsStored: now.rowsStored - previous.rowsStored,
          requests: now.requests - previous.requests,
          // Mean body size of the stored requests over the proxy's limit: how full each slot went.
          fill: stored === 0 ? null : Math.round(((now.bodyBytes - previous.bodyBytes) / stored / config.proxyMaxBodyBytes) * 1000) / 1000,
          spool: spool.stats(),
          lag: Object.fromEntries(source.lag()),
          nextSlotInMs: slots.msUntilNext(),
          rssMiB: mib(memory.rss),
          heapUsedMiB: mib(memory.heapUsed),
          heapTotalMiB: mib(memory.heapTotal),
          externalMiB: mib(memory.external),
          arrayBuffersMiB: mib(memory.arrayBuffers),
        },
        'status',
      );
      previous = now;
    });
  }, 60_000);
  status.unref();

  const close = async (): Promise<void> => {
    clearInterval(status);
    await metricsServer?.close();
    await Promise.allSettled([source.close(), deadLetters.close(), clickhouse.close()]);
    await spool.close();
  };
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping gracefully');
    const deadline = setTimeout(() => {
      logger.error('could not stop within the deadline; exiting (nothing committed is lost: it is in the spool or still in Kafka)');
      process.exit(1);
    }, STOP_DEADLINE_MS);
    deadline.unref();
    void pipeline.stop().then(close).then(
      () => {
        logger.info({ spooled: spool.stats() }, 'stopped: the spooled batches are sent by the next run');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: (error as Error).message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));

  try {
    await pipeline.done;
  } finally {
    if (!stopping) await close();
  }
  // A signal ended the run: its handler finishes the stop and exits.
  if (stopping) await new Promise(() => {});
  const quarantined = (await spool.listQuarantine()).length;
  const handedBack = source.discarded();
  logger.info({ seconds: Math.round((Date.now() - started) / 100) / 10, quarantined, handedBack }, 'drained: everything consumed at start is stored and committed');
  if (handedBack > 0) {
    // A rebalance made some batches go back to Kafka uncommitted: they were not stored by this run.
    process.stderr.write(`anonymizer: ${handedBack} batch(es) were handed back to Kafka after a rebalance; run --drain again to store them\n`);
    process.exitCode = 1;
  } else if (quarantined > 0) {
    process.stderr.write(`anonymizer: drained, but ${quarantined} batch(es) are in quarantine (see \`anonymizer spool list\`)\n`);
    process.exitCode = 3;
  }
}

/** Running totals behind the status line, read from the pipeline's counters. */
async function statusTotals(metrics: PipelineMetrics): Promise<{ consumed: number; rowsStored: number; requests: number; storedRequests: number; bodyBytes: number }> {
  const sum = async (counter: Counter<string>, match: (labels: Record<string, unknown>) => boolean = () => true): Promise<number> =>
    (await counter.get()).values.filter((sample) => match(sample.labels)).reduce((total, sample) => total + sample.value, 0);
  return {
    consumed: await sum(metrics.consumed),
    rowsStored: await sum(metrics.rowsStored),
    requests: await sum(metrics.requests),
    storedRequests: await sum(metrics.requests, (labels) => labels.outcome === 'stored'),
    bodyBytes: await sum(metrics.bodyBytes),
  };
}
