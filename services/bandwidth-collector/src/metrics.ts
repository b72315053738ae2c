import type { Registry } from 'prom-client';
import { metricsOn } from '@gpu-meter/kit/runtime';
import { collectorOutputMetrics } from '@gpu-meter/kit/runners/collector';

export function collectorMetrics(registry: Registry, bufferSize: () => number) {
  const { counter, gauge } = metricsOn(registry);
  return {
    samplesProduced: counter(
      'gpumeter_bandwidth_samples_produced_total',
      'Bandwidth samples built and queued.',
    ),
    ...collectorOutputMetrics(registry, bufferSize),
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
    targets: gauge('gpumeter_scrape_targets', 'DCGM exporters scraped.'),
  };
}

export type CollectorMetrics = ReturnType<typeof collectorMetrics>;
