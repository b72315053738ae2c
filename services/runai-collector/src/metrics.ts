import type { Registry } from 'prom-client';
import { metricsOn } from '@gpu-meter/kit/runtime';
import { sharedCollectorMetrics } from '@gpu-meter/kit/runners/collector';

export function collectorMetrics(registry: Registry, bufferSize: () => number) {
  const { counter, gauge } = metricsOn(registry);
  return {
    ...sharedCollectorMetrics(registry, bufferSize),
    samplesProduced: counter(
      'gpumeter_allocation_samples_produced_total',
      'Allocation samples built and queued for Kafka.',
    ),
    samplesBackfilled: counter(
      'gpumeter_allocation_samples_backfilled_total',
      'Samples for grid points before the one being processed (restart backfill, late-seen pods).',
    ),
    untrustedInputs: counter(
      'gpumeter_untrusted_inputs_total',
      'Samples of pods whose annotation or request was not billed as written (malformed, below the container limits, above the node capacity), by input and reason.',
      ['input', 'reason'],
    ),
    rejectedPodGridPoints: counter(
      'gpumeter_rejected_pod_grid_points_total',
      'Grid points of pods the pod model rejected (a quantity it cannot parse, an amount no sample can carry), not sampled but dead-lettered, by reason: model_error, invalid_amount.',
      ['reason'],
    ),
    watchFresh: gauge(
      'gpumeter_kubernetes_watch_fresh',
      '1 while the pod and node watches are fresh (listed, not failed, a list or event within WATCH_STALE_INTERVALS), else 0.',
    ),
    staleGridPoints: counter(
      'gpumeter_stale_grid_points_total',
      'Grid points not sampled because the Kubernetes watch was not fresh (backfilled once it is).',
    ),
    trackedPods: gauge('gpumeter_tracked_pods', 'Pods in the cache (live and recently deleted).'),
  };
}

export type CollectorMetrics = ReturnType<typeof collectorMetrics>;
