import { env, schemas } from '../config/env.js';
import { collectorOutputConfigSpec } from '../kafka/sample-publisher.js';
import { kafkaConfigSpec, registryConfigSpec } from '../kafka/config.js';
import { kubernetesConfigSpec, watchFreshnessConfigSpec } from '../kubernetes/config.js';
import { opsConfigSpec } from '../runtime/config.js';

/**
 * What every collector's configuration starts with: Kafka, registry, ops, Kubernetes, its output, and the
 * sampling grid (the cluster id, the grid interval, the delay after each grid point). The descriptions say
 * what the grid means for the collector, so each collector gives its own.
 */
export function collectorConfigSpec(docs: {
  readonly clusterId: string;
  readonly samplingInterval: string;
  readonly sampleDelay: string;
}) {
  return {
    ...kafkaConfigSpec,
    ...registryConfigSpec,
    ...opsConfigSpec,
    ...kubernetesConfigSpec,
    ...collectorOutputConfigSpec,
    clusterId: env('CLUSTER_ID', schemas.nonEmpty(), docs.clusterId),
    samplingIntervalMs: env('SAMPLING_INTERVAL_MS', schemas.int(15_000, 100), docs.samplingInterval),
    sampleDelayMs: env('SAMPLE_DELAY_MS', schemas.int(1_000, 0), docs.sampleDelay),
  } as const;
}

/** What every collector's configuration ends with: the watch freshness and the send buffer. */
export const collectorBufferConfigSpec = {
  ...watchFreshnessConfigSpec,
  maxBufferedSamples: env(
    'MAX_BUFFERED_SAMPLES',
    schemas.int(200_000, 1),
    'Samples kept in memory while Kafka is unreachable; past this the oldest are dropped (logged, counted).',
  ),
} as const;
