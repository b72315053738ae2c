import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type AggregatorMetrics = ReturnType<typeof createAggregatorMetrics>;

export function createAggregatorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    consumerLag: new Gauge({
      name: 'gpumeter_aggregator_consumer_lag',
      help: 'Records behind the log end, per input partition',
      labelNames: ['topic', 'partition'],
      registers,
    }),
    partitions: new Gauge({
      name: 'gpumeter_aggregator_raw_topic_partitions',
      help: 'Partitions of each raw topic, as last seen (a change is logged; one that is not a multiple of TASKS stops the aggregator)',
      labelNames: ['topic'],
      registers,
    }),
    watermarkLag: new Gauge({
      name: 'gpumeter_aggregator_watermark_minus_wall_clock_seconds',
      help: "Each input partition's watermark (latest observation time) minus the wall clock: about -interval when healthy, falling when an input stalls, positive if a clock runs ahead",
      labelNames: ['topic', 'partition'],
      registers,
    }),
    openWindows: new Gauge({
      name: 'gpumeter_aggregator_open_windows',
      help: 'Open windows over all owned tasks',
      registers,
    }),
    openGroups: new Gauge({
      name: 'gpumeter_aggregator_open_groups',
      help: 'Open (group, window) accumulators',
      registers,
    }),
    dedupeIds: new Gauge({
      name: 'gpumeter_aggregator_dedupe_ids',
      help: 'Sample ids currently remembered for dedupe',
      registers,
    }),
    dedupeHits: new Counter({
      name: 'gpumeter_aggregator_dedupe_hits_total',
      help: 'Duplicate samples ignored',
      registers,
    }),
    late: new Counter({
      name: 'gpumeter_aggregator_late_samples_total',
      help: 'Samples (partly) for closed windows',
      labelNames: ['policy'],
      registers,
    }),
    deadLettered: new Counter({
      name: 'gpumeter_aggregator_dead_lettered_total',
      help: 'Records sent to the dead-letter topic',
      registers,
    }),
    events: new Counter({
      name: 'gpumeter_aggregator_usage_events_total',
      help: 'Usage events committed',
      registers,
    }),
    replayed: new Counter({
      name: 'gpumeter_aggregator_replayed_records_total',
      help: 'Records re-read after a restore',
      registers,
    }),
    transactions: new Counter({
      name: 'gpumeter_aggregator_transactions_total',
      help: 'Kafka transactions by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    emitLatency: new Histogram({
      name: 'gpumeter_aggregator_emit_latency_seconds',
      help: 'Wall clock from a window end to the commit of its events',
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
  };
}
