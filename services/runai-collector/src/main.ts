import type { PodAllocationSample } from '@gpu-meter/kit/contracts';
import { podSampleKey } from '@gpu-meter/kit/runai';
import type { SamplePublisher } from '@gpu-meter/kit/kafka';
import { runCollector } from '@gpu-meter/kit/runners/collector';
import { RunaiCollector } from './collector.js';
import { SERVICE_NAME, loadConfig } from './config.js';
import { collectorMetrics } from './metrics.js';

void runCollector({
  service: SERVICE_NAME,
  loadConfig,
  schema: 'podAllocationSample',
  key: podSampleKey,
  metrics: collectorMetrics,
  collector: (config, kubeConfig, publisher: SamplePublisher<PodAllocationSample>, metrics, logger) =>
    new RunaiCollector(config, kubeConfig, publisher, metrics, logger),
});
