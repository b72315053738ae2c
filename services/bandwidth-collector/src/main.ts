import { bandwidthSampleKey, type BandwidthSample, type SamplePublisher } from '@gpu-meter/kit';
import { runCollector } from '@gpu-meter/kit/collector';
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
