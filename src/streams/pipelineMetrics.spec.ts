// The metric names and labels `anonymizer run` exposes, read from a prom-client registry built
// the way run.ts builds it: Prometheus' naming conventions, and the standard names of the
// process and Node.js metrics that stock dashboards and alerts look for.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createPipelineMetrics, registerClientGauges, registerDefaultMetrics } from './pipelineMetrics.ts';

async function runRegistry(): Promise<Registry> {
  const registry = new Registry();
  registerDefaultMetrics(registry);
  createPipelineMetrics(registry);
  registerClientGauges(registry, { topic: 'http_log', lag: () => new Map([[0, 5], [2, 0]]), msUntilNext: () => 1_500 });
  return registry;
}

/**
 * What each product metric measures: a unit (the name must end in it, before `_total`), or
 * a plain count of things or a 0/1 state (no unit). A new metric fails the test until it is
 * classified here.
 */
const MEASURES: Readonly<Record<string, 'bytes' | 'seconds' | 'messages' | 'ratio' | 'count' | 'state'>> = {
  anonymizer_messages_dead_lettered_total: 'count',
  anonymizer_invalid_addresses_total: 'count',
  anonymizer_url_addresses_anonymized_total: 'count',
  anonymizer_batches_sealed_total: 'count',
  anonymizer_batches_discarded_total: 'count',
  anonymizer_insert_requests_total: 'count',
  anonymizer_rows_stored_total: 'count',
  anonymizer_stored_body_bytes_total: 'bytes',
  anonymizer_batches_split_total: 'count',
  anonymizer_batches_quarantined_total: 'count',
  anonymizer_spool_bytes: 'bytes',
  anonymizer_spool_batches: 'count',
  anonymizer_consumer_paused: 'state',
  anonymizer_consumer_pauses_total: 'count',
  anonymizer_records_consumed_total: 'count',
  anonymizer_records_decoded_total: 'count',
  anonymizer_records_anonymized_total: 'count',
  anonymizer_body_measurements_total: 'count',
  anonymizer_batches_sent_total: 'count',
  anonymizer_batches_acknowledged_total: 'count',
  anonymizer_request_rows: 'count',
  anonymizer_request_body_bytes: 'bytes',
  anonymizer_request_fill_ratio: 'ratio',
  anonymizer_end_to_end_latency_seconds: 'seconds',
  anonymizer_delivery_blocked: 'state',
  anonymizer_spool_disk_full: 'state',
  anonymizer_spool_disk_errors_total: 'count',
  anonymizer_spool_quarantined_batches: 'count',
  anonymizer_spool_corrupt_files_total: 'count',
  anonymizer_consumer_lag_messages: 'messages',
  anonymizer_next_slot_seconds: 'seconds',
};

describe('the metrics of anonymizer run', () => {
  it('keeps the standard names of the process and Node.js metrics (no prefix)', async () => {
    const names = (await runRegistry()).getMetricsAsArray().map((metric) => metric.name);
    for (const standard of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(names, standard).toContain(standard);
    }
    expect(names.filter((name) => /^anonymizer_(process|nodejs)_/.test(name))).toEqual([]);
  });

  it('names every product metric anonymizer_…, counters …_total, with the unit as a suffix', async () => {
    const product = (await runRegistry()).getMetricsAsArray().filter((metric) => !/^(process|nodejs)_/.test(metric.name));
    expect(product.length).toBeGreaterThanOrEqual(30);
    for (const metric of product) {
      const { name } = metric;
      expect(name, name).toMatch(/^anonymizer_[a-z0-9_]+$/);
      const type = String(metric.type);
      if (type === 'counter') expect(name, `${name} is a counter`).toMatch(/_total$/);
      else expect(name, `${name} is a ${type}, not a counter`).not.toMatch(/_total$/);
      const measures = MEASURES[name];
      expect(measures, `${name} is not classified in MEASURES`).toBeDefined();
      const base = name.replace(/_total$/, '');
      if (measures !== 'count' && measures !== 'state') expect(base, `${name} measures ${measures}`).toMatch(new RegExp(`_${measures}$`));
      // A unit word inside the name must be its suffix: no anonymizer_body_bytes_stored_total.
      expect(base.replace(/_(bytes|seconds|messages|ratio)$/, ''), name).not.toMatch(/_(bytes|seconds)(_|$)/);
    }
    expect(product.map((metric) => metric.name).sort()).toEqual(Object.keys(MEASURES).sort());
  });

  it('exposes the consumer lag in messages, by topic and partition', async () => {
    const registry = await runRegistry();
    expect(registry.getSingleMetric('anonymizer_consumer_lag')).toBeUndefined();
    const lag = registry.getSingleMetric('anonymizer_consumer_lag_messages');
    expect(lag).toBeDefined();
    expect((await lag!.get()).type).toBe('gauge');
    const values = (await lag!.get()).values.map((sample) => ({ labels: sample.labels, value: sample.value }));
    expect(values).toEqual([
      { labels: { topic: 'http_log', partition: '0' }, value: 5 },
      { labels: { topic: 'http_log', partition: '2' }, value: 0 },
    ]);
    const text = await registry.metrics();
    expect(text).toMatch(/^anonymizer_consumer_lag_messages\{topic="http_log",partition="0"\} 5$/m);
    expect(text).toMatch(/^anonymizer_next_slot_seconds 1\.5$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
  });
});
