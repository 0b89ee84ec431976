/**
 * The pipeline's metrics (prom-client). Created per registry so tests and embedders get
 * their own; `anonymizer run` uses one registry per process.
 */
import { Counter, Gauge, Registry } from 'prom-client';

export interface PipelineMetrics {
  readonly rejected: Counter<'reason'>;
  readonly invalidAddresses: Counter;
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
  readonly consumed: Counter;
}

export function createPipelineMetrics(registry: Registry = new Registry()): PipelineMetrics {
  const registers = [registry];
  return {
    rejected: new Counter({ name: 'anonymizer_messages_dead_lettered_total', help: 'Kafka messages that could not become a row, sent to the dead-letter topic, by reason', labelNames: ['reason'], registers }),
    invalidAddresses: new Counter({ name: 'anonymizer_invalid_addresses_total', help: 'Client addresses that did not parse and were stored as X', registers }),
    sealed: new Counter({ name: 'anonymizer_batches_sealed_total', help: 'Batches sealed, by what sealed them', labelNames: ['reason'], registers }),
    discarded: new Counter({ name: 'anonymizer_batches_discarded_total', help: 'Batches dropped because their commit was refused after a rebalance (their records are read again)', registers }),
    requests: new Counter({ name: 'anonymizer_insert_requests_total', help: 'Insert requests by outcome', labelNames: ['outcome'], registers }),
    rowsStored: new Counter({ name: 'anonymizer_rows_stored_total', help: 'Rows acknowledged by ClickHouse', registers }),
    bodyBytes: new Counter({ name: 'anonymizer_body_bytes_stored_total', help: 'Compressed body bytes of stored batches', registers }),
    split: new Counter({ name: 'anonymizer_batches_split_total', help: 'Batches split after the proxy refused them as too large (413)', registers }),
    quarantined: new Counter({ name: 'anonymizer_batches_quarantined_total', help: 'Batches set aside because ClickHouse refused their data', registers }),
    spoolBytes: new Gauge({ name: 'anonymizer_spool_bytes', help: 'Bytes of sealed batches waiting in the spool', registers }),
    spoolBatches: new Gauge({ name: 'anonymizer_spool_batches', help: 'Sealed batches waiting in the spool', registers }),
    paused: new Gauge({ name: 'anonymizer_consumer_paused', help: '1 while consumption is paused because the spool is full', registers }),
    consumed: new Counter({ name: 'anonymizer_records_consumed_total', help: 'Kafka messages handed to the pipeline', registers }),
  };
}
