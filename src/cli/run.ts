import { randomBytes } from 'node:crypto';
import { access, constants, rename, writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { BehaviorSubject, config as rxjsConfig } from 'rxjs';
import { AnonymizerError, ConfigError, PeerUnreachableError, SlotDirError } from '../errors.ts';
import { ProxySlots, type SharedSlotsConfig } from '../pacing/proxySlots.ts';
import { openSlotDir } from '../io/slotDir.ts';
import { compress } from '../encode/compress.ts';
import { SETTING_NAMES, type AppConfig } from '../config.ts';
import { checkClickHouseTls, createClickHouseHttp, type ClickHouseClient } from '../io/clickhouseHttp.ts';
import { isTlsFailure } from '../io/connectFailure.ts';
import { createDeadLetterSink, type DeadLetterSink } from '../io/deadLetterSink.ts';
import { createKafkaSource, readCommittedWithMetadata, stagedCommitLanded, type KafkaSource } from '../io/kafkaSource.ts';
import { checkKafkaReachable, createKafkaClient } from '../io/kafkaClient.ts';
import { createLogger, type Logger } from '../io/logger.ts';
import { Spool } from '../io/spool.ts';
import { startMetricsServer, type MetricsServer, type Readiness } from '../io/metricsServer.ts';
import { MAX_OUTSTANDING_ROWS, runPipeline, type RunningPipeline } from '../streams/anonymizerPipeline.ts';
import { createPipelineMetrics, type PipelineMetrics } from '../streams/pipelineMetrics.ts';
import { DELIVERY_OK, type DeliveryState } from '../operators/deliveryState.ts';
import { configFrom, withSettings } from './settings.ts';

/** How long a graceful stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 15_000;
/** How long closing the clients may take after a fatal error (a broker that is gone never answers a disconnect). */
const CLOSE_DEADLINE_MS = 5_000;

/** The registry's metrics in Prometheus text, written to a temp file and renamed over `file`. */
async function writeMetricsFile(file: string, registry: Registry): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, await registry.metrics());
  await rename(temporary, file);
}

/** Runs every closer, each failure ignored, and gives up waiting after `ms`. */
async function closeWithin(ms: number, closers: ReadonlyArray<() => Promise<unknown>>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  const all = (async () => {
    for (const close of closers) await close().catch(() => {});
  })();
  await Promise.race([all, deadline]);
  clearTimeout(timer);
}

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
  const kafka = createKafkaClient(config.kafka, logger.child({ component: 'kafka' }));
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
  // Whatever fails on the way (a spool that cannot be opened, a port in use, a broker that
  // refuses), what was already opened is closed again, so the process exits instead of
  // hanging on a connected client.
  const opened: Array<() => Promise<unknown>> = [];
  // Closed last, so it holds the final counts, whichever way the run ends.
  if (config.metricsFile !== '') opened.push(() => writeMetricsFile(config.metricsFile, registry));
  // The metrics port first: one in use is a configuration error (exit 2), found before a
  // spool is locked or a broker dialled.
  let readiness: Readiness = async () => 'starting: opening the spool and the Kafka clients';
  const metricsServer =
    config.metricsPort === 0 ? undefined : await startMetricsServer({ host: config.metricsHost, port: config.metricsPort, registry, readiness: () => readiness() });
  if (metricsServer) opened.push(() => metricsServer.close());
  const start: RunStart = { logger, registry, metrics, opened, metricsServer, setReadiness: (check) => (readiness = check) };
  try {
    readiness = async () => 'starting: connecting to Kafka';
    await checkPeers(config, logger);
    return await runOpened(config, drain, start);
  } finally {
    await closeWithin(CLOSE_DEADLINE_MS, opened.reverse());
  }
}

/**
 * Before anything is opened: the brokers must answer (a wrong address, CA or password is
 * one line and a non-zero exit within seconds, not minutes of retries), and an https://
 * ClickHouse must present a certificate we trust (one TLS handshake, no request, so no
 * proxy slot). ClickHouse merely not answering is not fatal: records wait in the spool.
 */
async function checkPeers(config: AppConfig, logger: Logger): Promise<void> {
  await checkKafkaReachable(config.kafka, logger.child({ component: 'kafka' }));
  if (new URL(config.clickhouse.url).protocol !== 'https:') return;
  try {
    await checkClickHouseTls(config.clickhouse.url, config.clickhouse.tls);
  } catch (error) {
    if (isTlsFailure(error) || !(error instanceof PeerUnreachableError)) throw error;
    logger.warn({ clickhouse: error.endpoint, reason: error.reason }, 'ClickHouse does not answer yet: records wait in the spool until it does');
  }
}

/** What `run` has set up before the spool and the clients are opened. */
interface RunStart {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly metrics: PipelineMetrics;
  /** Closers of what is open, in opening order. */
  readonly opened: Array<() => Promise<unknown>>;
  readonly metricsServer: MetricsServer | undefined;
  setReadiness(check: Readiness): void;
}

/** The spool and the clients of a run. */
interface RunClients {
  readonly spool: Spool;
  readonly source: KafkaSource;
  readonly deadLetters: DeadLetterSink;
  readonly clickhouse: ClickHouseClient;
  readonly slots: ProxySlots;
  readonly deliveryState$: BehaviorSubject<DeliveryState>;
}

async function runOpened(config: AppConfig, drain: boolean, start: RunStart): Promise<void> {
  const { logger, metrics } = start;
  const clients = await openClients(config, drain, logger, start.opened, start.registry);
  registerGauges(start.registry, clients);
  start.setReadiness(readinessOf(config, clients));
  const started = Date.now();
  logger.info(startLine(config, drain, clients.spool, start.metricsServer), 'starting');
  const pipeline = runPipeline(
    {
      ...clients,
      compress: (body) => compress(config.insertCodec, config.insertLevel, body),
      codec: config.insertCodec,
      maxBodyBytes: config.proxyMaxBodyBytes,
      spoolMaxBytes: config.spoolMaxBytes,
      logger: logger.child({ component: 'pipeline' }),
      metrics,
      deliveryState: clients.deliveryState$,
      anonymizeUrlAddresses: config.anonymizeUrlAddresses,
    },
    { drain },
  );
  // The last resort for an error no operator could deliver (a throw in a subscriber's own
  // callback, a rejected promise nobody awaited): it takes the pipeline's error path, so the
  // process stops fetching, keeps what is durable, and exits with a code instead of crashing.
  const abort = (error: unknown): void => pipeline.abort(error);
  rxjsConfig.onUnhandledError = abort;
  process.on('uncaughtException', abort);
  process.on('unhandledRejection', abort);

  const stopStatus = startStatusLine(config, clients, metrics, logger);
  const close = async (): Promise<void> => {
    stopStatus();
    await closeWithin(CLOSE_DEADLINE_MS, start.opened.splice(0).reverse());
  };
  const signalled = onStopSignals(pipeline, close, clients.spool, logger);
  try {
    await pipeline.done;
  } catch (error) {
    // Fatal: nothing more is fetched; what is spooled stays for the next run, and what was
    // not yet committed is still in Kafka. main.ts prints the one line with the error's code.
    logger.error({ code: error instanceof AnonymizerError ? error.code : 'ANON_INTERNAL', err: (error as Error).message }, 'fatal error: stopping');
    throw error;
  } finally {
    if (!signalled()) await close();
  }
  // A signal ended the run: its handler finishes the stop and exits.
  if (signalled()) await new Promise(() => {});
  await reportDrain(clients, logger, started);
}

/** Opens the spool and the clients, each registered to be closed again. */
async function openClients(config: AppConfig, drain: boolean, logger: Logger, opened: Array<() => Promise<unknown>>, registry: Registry): Promise<RunClients> {
  const shared = sharedSlotsOf(config, logger, registry);
  const spool = await openSpool(config, logger);
  opened.push(() => spool.close());
  const source = createKafkaSource({
    ...config.kafka,
    topic: config.kafkaTopic,
    groupId: config.kafkaGroupId,
    drain,
    maxOutstanding: MAX_OUTSTANDING_ROWS,
    logger: logger.child({ component: 'kafkaSource' }),
  });
  opened.push(() => source.close());
  const kafka = createKafkaClient(config.kafka, logger.child({ component: 'deadLetters' }));
  const deadLetters = await createDeadLetterSink(kafka, { topic: config.kafkaDlqTopic, sourceTopic: config.kafkaTopic });
  opened.push(() => deadLetters.close());
  const clickhouse = createClickHouseHttp(config.clickhouse);
  opened.push(() => clickhouse.close());
  const slots = new ProxySlots({ minIntervalMs: config.proxyMinIntervalMs, marginMs: config.proxyMarginMs, ...(shared ? { shared } : {}) });
  // The latest delivery state (ok | blocked), fed by the delivery chain, read by /readyz.
  const deliveryState$ = new BehaviorSubject<DeliveryState>(DELIVERY_OK);
  return { spool, source, deadLetters, clickhouse, slots, deliveryState$ };
}

/**
 * PROXY_SLOT_DIR: the slot ledger shared with the other instances on this address. A
 * directory that cannot be made at start is a configuration error; one that fails later is
 * counted and logged, and that request is paced on its own (never fatal).
 */
function sharedSlotsOf(config: AppConfig, logger: Logger, registry: Registry): SharedSlotsConfig | undefined {
  const dir = config.proxySlotDir;
  if (dir === '') return undefined;
  let ledger;
  try {
    ledger = openSlotDir(dir);
  } catch (error) {
    throw new ConfigError('PROXY_SLOT_DIR', `PROXY_SLOT_DIR: cannot create the directory ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const errors = new Counter({ name: 'anonymizer_slot_dir_errors_total', help: 'Times the slot directory (PROXY_SLOT_DIR) could not be read or written; that request was paced on its own', registers: [registry] });
  const log = logger.child({ component: 'proxySlots' });
  return {
    ledger,
    // Unique per process; a file-name-safe id, with no address in it.
    owner: `${process.pid}-${randomBytes(4).toString('hex')}`,
    onError: (error) => {
      errors.inc();
      const failure = new SlotDirError(dir, (error as NodeJS.ErrnoException).code ?? 'unknown', { cause: error });
      log.warn({ code: failure.code, errno: failure.errno, err: (error as Error).message }, failure.message);
    },
  };
}

/** The gauges read from the clients at each scrape. */
function registerGauges(registry: Registry, { source, slots }: RunClients): void {
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
}

/** /readyz: undefined when ready, else why not. */
function readinessOf(config: AppConfig, { source, spool, clickhouse, deliveryState$ }: RunClients): Readiness {
  return async () => {
    const delivery = deliveryState$.value;
    if (delivery.kind === 'blocked') {
      return `delivery blocked (${delivery.reason}) since ${new Date(delivery.since).toISOString()}: ${clickhouse.endpoint ?? 'ClickHouse'} answers ${delivery.message.slice(0, 300)}`;
    }
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
  };
}

function startLine(config: AppConfig, drain: boolean, spool: Spool, metricsServer: MetricsServer | undefined): Record<string, unknown> {
  return {
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
  };
}

/** One status line a minute: is it keeping up, and is memory flat? Counts are for the last minute. Returns its stop. */
function startStatusLine(config: AppConfig, { spool, source, slots }: RunClients, metrics: PipelineMetrics, logger: Logger): () => void {
  let previous = { consumed: 0, rowsStored: 0, requests: 0, storedRequests: 0, bodyBytes: 0 };
  const mib = (bytes: number) => Math.round(bytes / 1048576);
  const status = setInterval(() => {
    void statusTotals(metrics).then((now) => {
      const memory = process.memoryUsage();
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
  return () => clearInterval(status);
}

/**
 * SIGINT/SIGTERM: the open batch is sealed, persisted and committed, the clients close,
 * and the process exits 0 (1 past STOP_DEADLINE_MS). Returns whether a signal came.
 */
function onStopSignals(pipeline: RunningPipeline, close: () => Promise<void>, spool: Spool, logger: Logger): () => boolean {
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
  return () => stopping;
}

/** The end of a drain: exit 1 if batches went back to Kafka, 3 if some are in quarantine. */
async function reportDrain({ spool, source }: RunClients, logger: Logger, started: number): Promise<void> {
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
