import { Counter, Gauge, type Registry } from 'prom-client';

export function collectorMetrics(registry: Registry, bufferSize: () => number) {
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    samplesProduced: counter(
      'gpumeter_bandwidth_samples_produced_total',
      'Bandwidth samples built and queued.',
    ),
    samplesPublished: counter(
      'gpumeter_samples_published_total',
      'Samples acknowledged by Kafka (acks=all).',
    ),
    samplesDropped: counter(
      'gpumeter_samples_dropped_total',
      'Samples never delivered, by reason: buffer_full (Kafka unreachable too long), shutdown (not acknowledged within the drain time), too_large (refused even alone, no dead-letter topic).',
      ['reason'],
    ),
    samplesDeadLettered: counter(
      'gpumeter_samples_dead_lettered_total',
      'Samples sent to the collector dead-letter topic, by reason: identity_too_long, message_too_large.',
      ['reason'],
    ),
    sampleFieldsTruncated: counter(
      'gpumeter_sample_fields_truncated_total',
      'String fields cut to SAMPLE_MAX_STRING_LENGTH (with a marker) before sending, by field.',
      ['field'],
    ),
    sendErrors: counter('gpumeter_send_errors_total', 'Failed sends to Kafka (retried).'),
    unallocatedSamples: counter('gpumeter_unallocated_samples_total', 'Samples of device time no pod held.'),
    unattributedSamples: counter(
      'gpumeter_unattributed_samples_total',
      'Samples of pods with no project, billed to the fallback subject.',
    ),
    scrapes: counter('gpumeter_scrapes_total', 'DCGM exporter scrapes (ok, error, too_large).', ['result']),
    rejectedReadings: counter(
      'gpumeter_rejected_readings_total',
      "Exporter readings not taken as given: a GPU of another node (foreign_node, dropped) or a pod mapping to another node's pod (foreign_pod, mapping dropped).",
      ['reason'],
    ),
    skippedSeries: counter(
      'gpumeter_skipped_series_total',
      'DCGM series without UUID or with a non-numeric value.',
    ),
    watchErrors: counter('gpumeter_watch_errors_total', 'Kubernetes list/watch failures.', ['kind']),
    lists: counter('gpumeter_kubernetes_lists_total', 'Kubernetes lists (first and relists).', ['kind']),
    bufferSize: new Gauge({
      name: 'gpumeter_send_buffer_size',
      help: 'Samples waiting to be sent to Kafka.',
      registers: [registry],
      collect() {
        this.set(bufferSize());
      },
    }),
    targets: new Gauge({
      name: 'gpumeter_scrape_targets',
      help: 'DCGM exporters scraped.',
      registers: [registry],
    }),
  };
}

export type CollectorMetrics = ReturnType<typeof collectorMetrics>;
