/**
 * The pipeline's metrics (prom-client). Created per registry so tests and embedders get
 * their own; `anonymizer run` uses one registry per process.
 *
 * Naming (Prometheus' conventions, checked by pipelineMetrics.spec.ts): every product metric
 * starts with `anonymizer_`; a quantity with a unit ends in it (`_bytes`, `_seconds`,
 * `_messages`), a counter in `_total` after the unit; the labels a dashboard filters on are
 * `topic` and `partition`. The process and Node.js metrics of prom-client's
 * collectDefaultMetrics keep their standard names (`process_*`, `nodejs_*`, no prefix), so
 * stock Node.js dashboards and alerts find them.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface PipelineMetrics {
  readonly rejected: Counter<'reason'>;
  readonly invalidAddresses: Counter;
  readonly urlAddresses: Counter;
  readonly sealed: Counter<'reason'>;
  readonly discarded: Counter;
  readonly requests: Counter<'outcome'>;
  readonly rowsStored: Counter;
  readonly bodyBytes: Counter;
  readonly split: Counter;
  readonly quarantined: Counter;
  readonly spoolBytes: Gauge;
  readonly spoolBatches: Gauge;
  readonly paused: Gauge;
  readonly pauses: Counter<'reason'>;
  readonly consumed: Counter;
  readonly decoded: Counter;
  readonly anonymized: Counter;
  readonly bodyMeasurements: Counter<'verdict'>;
  readonly sent: Counter;
  readonly acknowledged: Counter;
  readonly requestRows: Histogram;
  readonly requestBytes: Histogram;
  readonly fillRatio: Histogram;
  readonly latency: Histogram;
  /** 1 for the reason delivery is blocked, 0 for the others (src/errors.ts, BlockedReason). */
  readonly deliveryBlocked: Gauge<'reason'>;
  readonly spoolDiskFull: Gauge;
  readonly spoolDiskErrors: Counter<'errno'>;
  readonly spoolQuarantined: Gauge;
  readonly spoolCorruptFiles: Counter<'reason'>;
}

export function createPipelineMetrics(registry: Registry = new Registry()): PipelineMetrics {
  const registers = [registry];
  return {
    rejected: new Counter({ name: 'anonymizer_messages_dead_lettered_total', help: 'Kafka messages that could not become a row, sent to the dead-letter topic, by reason', labelNames: ['reason'], registers }),
    invalidAddresses: new Counter({ name: 'anonymizer_invalid_addresses_total', help: 'Client addresses that did not parse and were stored as X', registers }),
    urlAddresses: new Counter({ name: 'anonymizer_url_addresses_anonymized_total', help: 'URLs that held an IPv4/IPv6 literal, anonymized like remote_addr (ANONYMIZE_URL_ADDRESSES)', registers }),
    sealed: new Counter({ name: 'anonymizer_batches_sealed_total', help: 'Batches sealed, by what sealed them', labelNames: ['reason'], registers }),
    discarded: new Counter({ name: 'anonymizer_batches_discarded_total', help: 'Batches dropped because their commit was refused after a rebalance (their records are read again)', registers }),
    requests: new Counter({ name: 'anonymizer_insert_requests_total', help: 'Insert requests by outcome', labelNames: ['outcome'], registers }),
    rowsStored: new Counter({ name: 'anonymizer_rows_stored_total', help: 'Rows acknowledged by ClickHouse', registers }),
    bodyBytes: new Counter({ name: 'anonymizer_stored_body_bytes_total', help: 'Compressed body bytes of stored batches', registers }),
    split: new Counter({ name: 'anonymizer_batches_split_total', help: 'Batches split after the proxy refused them as too large (413)', registers }),
    quarantined: new Counter({ name: 'anonymizer_batches_quarantined_total', help: 'Batches set aside because ClickHouse refused their data', registers }),
    spoolBytes: new Gauge({ name: 'anonymizer_spool_bytes', help: 'Bytes of sealed batches waiting in the spool', registers }),
    spoolBatches: new Gauge({ name: 'anonymizer_spool_batches', help: 'Sealed batches waiting in the spool', registers }),
    paused: new Gauge({ name: 'anonymizer_consumer_paused', help: '1 while consumption is paused because the spool is full', registers }),
    pauses: new Counter({ name: 'anonymizer_consumer_pauses_total', help: 'Times consumption paused, by reason', labelNames: ['reason'], registers }),
    consumed: new Counter({ name: 'anonymizer_records_consumed_total', help: 'Kafka messages handed to the pipeline', registers }),
    decoded: new Counter({ name: 'anonymizer_records_decoded_total', help: 'Kafka messages decoded into records', registers }),
    anonymized: new Counter({ name: 'anonymizer_records_anonymized_total', help: 'Records whose client address was anonymized (invalid ones included, stored as X)', registers }),
    bodyMeasurements: new Counter({ name: 'anonymizer_body_measurements_total', help: 'Insert bodies encoded and compressed while sealing, by verdict (fits, shrink, grow)', labelNames: ['verdict'], registers }),
    sent: new Counter({ name: 'anonymizer_batches_sent_total', help: 'Insert requests started (every attempt)', registers }),
    acknowledged: new Counter({ name: 'anonymizer_batches_acknowledged_total', help: 'Batches stored by ClickHouse and removed from the spool', registers }),
    requestRows: new Histogram({ name: 'anonymizer_request_rows', help: 'Rows per stored insert request', buckets: [100, 1_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 120_000, 200_000], registers }),
    requestBytes: new Histogram({ name: 'anonymizer_request_body_bytes', help: 'Compressed body bytes per stored insert request', buckets: [16_384, 65_536, 262_144, 524_288, 786_432, 943_718, 996_147, 1_048_576, 2_097_152], registers }),
    fillRatio: new Histogram({ name: 'anonymizer_request_fill_ratio', help: 'Stored body bytes ÷ the proxy body limit', buckets: [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98, 1], registers }),
    spoolDiskFull: new Gauge({ name: 'anonymizer_spool_disk_full', help: "1 while the spool's disk refuses writes (ENOSPC, EDQUOT, EIO): consumption is paused and the same batch retried", registers }),
    spoolDiskErrors: new Counter({ name: 'anonymizer_spool_disk_errors_total', help: "Batch writes the spool's disk refused, by errno (each retry counts)", labelNames: ['errno'], registers }),
    spoolQuarantined: new Gauge({ name: 'anonymizer_spool_quarantined_batches', help: 'Entries in SPOOL_DIR/quarantine: batches ClickHouse refused and files that failed their check', registers }),
    spoolCorruptFiles: new Counter({ name: 'anonymizer_spool_corrupt_files_total', help: 'Spool files that failed their check (name, header or body checksum) when the spool was opened, by reason', labelNames: ['reason'], registers }),
    latency: new Histogram({ name: 'anonymizer_end_to_end_latency_seconds', help: "From the oldest record's timestamp in a batch to its acknowledgement by ClickHouse", buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1_800, 3_600, 21_600], registers }),
    deliveryBlocked: new Gauge({ name: 'anonymizer_delivery_blocked', help: '1 while every insert fails for this reason (credentials, a missing table, no grant…): batches wait in the spool', labelNames: ['reason'], registers }),
  };
}

/** What the client gauges read at each scrape. */
export interface ClientGaugeSources {
  /** The topic consumed: the `topic` label of the lag gauge. */
  readonly topic: string;
  /** Per partition: the high-water mark minus the next offset to fetch, as last seen. */
  lag(): ReadonlyMap<number, number>;
  /** Milliseconds until the proxy may take the next request. */
  msUntilNext(): number;
}

/** The gauges `run` reads from its clients at each scrape (consumer lag, the next proxy slot). */
export function registerClientGauges(registry: Registry, sources: ClientGaugeSources): void {
  new Gauge({
    name: 'anonymizer_consumer_lag_messages',
    help: 'Per topic and partition: the high-water mark minus the next offset to fetch, in messages, as last seen',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      for (const [partition, lag] of sources.lag()) this.set({ topic: sources.topic, partition: String(partition) }, lag);
    },
  });
  new Gauge({
    name: 'anonymizer_next_slot_seconds',
    help: 'Seconds until the proxy may take the next request',
    registers: [registry],
    collect() {
      this.set(sources.msUntilNext() / 1000);
    },
  });
}

/** prom-client's process and Node.js metrics, under their standard names (no prefix). */
export function registerDefaultMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}
