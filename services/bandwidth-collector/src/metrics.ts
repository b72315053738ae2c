import type { Registry } from 'prom-client';
import { metricsOn } from '@gpu-meter/kit/runtime';
import { sharedCollectorMetrics } from '@gpu-meter/kit/runners/collector';

export function collectorMetrics(registry: Registry, bufferSize: () => number) {
  const { counter, gauge } = metricsOn(registry);
  return {
    ...sharedCollectorMetrics(registry, bufferSize),
    samplesProduced: counter(
      'gpumeter_bandwidth_samples_produced_total',
      'Bandwidth samples built and queued.',
    ),
    unallocatedSamples: counter('gpumeter_unallocated_samples_total', 'Samples of device time no pod held.'),
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
    targets: gauge('gpumeter_scrape_targets', 'DCGM exporters scraped.'),
  };
}

export type CollectorMetrics = ReturnType<typeof collectorMetrics>;
