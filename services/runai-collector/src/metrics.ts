import { Counter, Gauge, type Registry } from 'prom-client';
import { collectorOutputMetrics } from '@gpu-meter/kit/runners/collector';

export function collectorMetrics(registry: Registry, bufferSize: () => number) {
  return {
    samplesProduced: new Counter({
      name: 'gpumeter_allocation_samples_produced_total',
      help: 'Allocation samples built and queued for Kafka.',
      registers: [registry],
    }),
    samplesBackfilled: new Counter({
      name: 'gpumeter_allocation_samples_backfilled_total',
      help: 'Samples for grid points before the one being processed (restart backfill, late-seen pods).',
      registers: [registry],
    }),
    ...collectorOutputMetrics(registry, bufferSize),
    unattributedSamples: new Counter({
      name: 'gpumeter_unattributed_samples_total',
      help: 'Samples of pods with no project, billed to the fallback subject.',
      registers: [registry],
    }),
    untrustedInputs: new Counter({
      name: 'gpumeter_untrusted_inputs_total',
      help: 'Samples of pods whose annotation or request was not billed as written (malformed, below the container limits, above the node capacity), by input and reason.',
      labelNames: ['input', 'reason'],
      registers: [registry],
    }),
    rejectedPodGridPoints: new Counter({
      name: 'gpumeter_rejected_pod_grid_points_total',
      help: 'Grid points of pods the pod model rejected (a quantity it cannot parse, an amount no sample can carry), not sampled but dead-lettered, by reason: model_error, invalid_amount.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    watchErrors: new Counter({
      name: 'gpumeter_watch_errors_total',
      help: 'Kubernetes list/watch failures (the informer restarts after a back-off).',
      labelNames: ['kind'],
      registers: [registry],
    }),
    watchFresh: new Gauge({
      name: 'gpumeter_kubernetes_watch_fresh',
      help: '1 while the pod and node watches are fresh (listed, not failed, a list or event within WATCH_STALE_INTERVALS), else 0.',
      registers: [registry],
    }),
    staleGridPoints: new Counter({
      name: 'gpumeter_stale_grid_points_total',
      help: 'Grid points not sampled because the Kubernetes watch was not fresh (backfilled once it is).',
      registers: [registry],
    }),
    lists: new Counter({
      name: 'gpumeter_kubernetes_lists_total',
      help: 'Kubernetes lists: the first, each periodic relist (WATCH_RELIST_INTERVALS), and each relist after 410 Gone or a failed list.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    trackedPods: new Gauge({
      name: 'gpumeter_tracked_pods',
      help: 'Pods in the cache (live and recently deleted).',
      registers: [registry],
    }),
  };
}

export type CollectorMetrics = ReturnType<typeof collectorMetrics>;
