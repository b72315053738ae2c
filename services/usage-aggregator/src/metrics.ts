import type { Registry } from 'prom-client';
import { metricsOn } from '@gpu-meter/kit/runtime';

export type AggregatorMetrics = ReturnType<typeof createAggregatorMetrics>;

export function createAggregatorMetrics(registry: Registry) {
  const { counter, gauge, histogram } = metricsOn(registry);
  return {
    consumerLag: gauge(
      'gpumeter_aggregator_consumer_lag',
      'Records behind the log end, per input partition',
      ['topic', 'partition'],
    ),
    partitions: gauge(
      'gpumeter_aggregator_raw_topic_partitions',
      'Partitions of each raw topic, as last seen (a change is logged; one that is not a multiple of TASKS stops the aggregator)',
      ['topic'],
    ),
    watermarkLag: gauge(
      'gpumeter_aggregator_watermark_minus_wall_clock_seconds',
      "Each input partition's watermark (latest observation time) minus the wall clock: about -interval when healthy, falling when an input stalls, positive if a clock runs ahead",
      ['topic', 'partition'],
    ),
    openWindows: gauge('gpumeter_aggregator_open_windows', 'Open windows over all owned tasks'),
    openGroups: gauge('gpumeter_aggregator_open_groups', 'Open (group, window) accumulators'),
    dedupeIds: gauge('gpumeter_aggregator_dedupe_ids', 'Sample ids currently remembered for dedupe'),
    dedupeHits: counter('gpumeter_aggregator_dedupe_hits_total', 'Duplicate samples ignored'),
    late: counter('gpumeter_aggregator_late_samples_total', 'Samples (partly) for closed windows', [
      'policy',
    ]),
    deadLettered: counter('gpumeter_aggregator_dead_lettered_total', 'Records sent to the dead-letter topic'),
    events: counter('gpumeter_aggregator_usage_events_total', 'Usage events committed'),
    replayed: counter('gpumeter_aggregator_replayed_records_total', 'Records re-read after a restore'),
    transactions: counter('gpumeter_aggregator_transactions_total', 'Kafka transactions by outcome', [
      'outcome',
    ]),
    emitLatency: histogram(
      'gpumeter_aggregator_emit_latency_seconds',
      'Wall clock from a window end to the commit of its events',
      [],
      { buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600] },
    ),
  };
}
