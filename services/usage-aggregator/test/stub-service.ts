import type { Admin, Kafka } from 'kafkajs';
import type { UsageEvent } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import type { TopicSerde } from '@gpu-meter/kit/kafka';
import type { RunningConfig } from '../src/config.js';
import type { AggregatorMetrics } from '../src/metrics.js';
import type { RemoteDriver } from '../src/remote-driver.js';
import { AggregatorService } from '../src/service.js';

/**
 * An AggregatorService over stand-ins, for tests of its Kafka shell alone: one task, topics `pods` and
 * `bandwidth`, and only the config fields, clients and worker a test names (anything else it touches fails).
 */
export function stubbedService(parts: {
  config: Partial<RunningConfig>;
  kafka?: unknown;
  admin?: unknown;
  driver?: unknown;
  metrics?: unknown;
}): AggregatorService {
  const config = {
    tasks: 1,
    podAllocationsTopic: 'pods',
    bandwidthSamplesTopic: 'bandwidth',
    ...parts.config,
  };
  return new AggregatorService(
    config as RunningConfig,
    (parts.kafka ?? {}) as Kafka,
    (parts.admin ?? {}) as Admin,
    (parts.driver ?? {}) as RemoteDriver,
    {} as TopicSerde<UsageEvent>,
    createLogger('test', 'silent'),
    (parts.metrics ?? {}) as AggregatorMetrics,
    () => {},
  );
}
