import type { BandwidthSample } from '@gpu-meter/kit/contracts';
import { bandwidthSampleKey } from '@gpu-meter/kit/runai';
import type { SamplePublisher } from '@gpu-meter/kit/kafka';
import { runCollector } from '@gpu-meter/kit/runners/collector';
import { BandwidthCollector } from './collector.js';
import { SERVICE_NAME, loadConfig } from './config.js';
import { collectorMetrics } from './metrics.js';

void runCollector({
  service: SERVICE_NAME,
  loadConfig,
  schema: 'bandwidthSample',
  key: bandwidthSampleKey,
  metrics: collectorMetrics,
  collector: (config, kubeConfig, publisher: SamplePublisher<BandwidthSample>, metrics, logger) =>
    new BandwidthCollector(config, kubeConfig, publisher, metrics, logger),
});
