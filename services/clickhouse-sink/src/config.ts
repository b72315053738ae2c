import {
  clickhouseConfigSpec,
  env,
  kafkaConfigSpec,
  usageEventsConsumerConfigSpec,
  opsConfigSpec,
  readConfig,
  registryConfigSpec,
  schemas,
  type ConfigOf,
} from '@gpu-meter/kit';

export const SERVICE_NAME = 'clickhouse-sink';

export const configSpec = {
  ...kafkaConfigSpec,
  ...registryConfigSpec,
  ...opsConfigSpec,
  ...clickhouseConfigSpec,
  ...usageEventsConsumerConfigSpec(SERVICE_NAME, {
    topic: 'usage.sink-dead-letters.v1',
    doc: 'Where undecodable usage events go, with headers naming their origin.',
  }),
  batchMaxRows: env('BATCH_MAX_ROWS', schemas.int(5000, 1, 1_000_000), 'Rows per ClickHouse insert.'),
  batchMaxWaitMs: env(
    'BATCH_MAX_WAIT_MS',
    schemas.int(2000, 1, 3_600_000),
    'Longest a consumed event waits before its batch is inserted.',
  ),
  retryInitialMs: env('RETRY_INITIAL_MS', schemas.int(200, 1), 'First retry delay while ClickHouse fails.'),
  retryMaxMs: env('RETRY_MAX_MS', schemas.int(30_000, 1), 'Longest retry delay (the backoff cap).'),
} as const;

export type SinkConfig = ConfigOf<typeof configSpec>;

export function loadConfig(source: Record<string, string | undefined> = process.env): SinkConfig {
  return readConfig(configSpec, source);
}
