/**
 * The pipeline's counters (prom-client). Created per registry so tests and embedders get
 * their own; `anonymizer run` uses the default one.
 */
import { Counter, Registry } from 'prom-client';

export interface PipelineMetrics {
  readonly rejected: Counter<'reason'>;
  readonly invalidAddresses: Counter;
  readonly sealed: Counter<'reason'>;
  readonly requests: Counter<'outcome'>;
  readonly rowsStored: Counter;
  readonly bodyBytes: Counter;
}

export function createPipelineMetrics(registry: Registry = new Registry()): PipelineMetrics {
  const registers = [registry];
  return {
    rejected: new Counter({ name: 'anonymizer_messages_rejected_total', help: 'Kafka messages that could not become a row, by reason', labelNames: ['reason'], registers }),
    invalidAddresses: new Counter({ name: 'anonymizer_invalid_addresses_total', help: 'Client addresses that did not parse and were stored as X', registers }),
    sealed: new Counter({ name: 'anonymizer_batches_sealed_total', help: 'Batches sealed, by what sealed them', labelNames: ['reason'], registers }),
    requests: new Counter({ name: 'anonymizer_insert_requests_total', help: 'Insert requests by outcome', labelNames: ['outcome'], registers }),
    rowsStored: new Counter({ name: 'anonymizer_rows_stored_total', help: 'Rows acknowledged by ClickHouse', registers }),
    bodyBytes: new Counter({ name: 'anonymizer_body_bytes_stored_total', help: 'Compressed body bytes of stored batches', registers }),
  };
}
