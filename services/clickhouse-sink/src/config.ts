import {
  clickhouseConfigSpec,
  DEFAULT_TOPICS,
  env,
  kafkaConfigSpec,
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
  usageEventsTopic: env('USAGE_EVENTS_TOPIC', schemas.nonEmpty(DEFAULT_TOPICS.usageEvents), 'Topic to read.'),
  deadLetterTopic: env(
    'DEAD_LETTER_TOPIC',
    schemas.nonEmpty('usage.sink-dead-letters.v1'),
    'Where undecodable usage events go, with headers naming their origin.',
  ),
  topicReplicationFactor: env(
    'TOPIC_REPLICATION_FACTOR',
    schemas.int(1, 1),
    'Replication factor of the dead-letter topic when this service creates it.',
  ),
  consumerGroup: env('CONSUMER_GROUP_ID', schemas.nonEmpty(SERVICE_NAME), 'Kafka consumer group id.'),
  sessionTimeoutMs: env(
    'SESSION_TIMEOUT_MS',
    schemas.int(30_000, 6_000, 300_000),
    "Consumer group session timeout: how soon a dead replica's partitions move to the others.",
  ),
  fromBeginning: env(
    'CONSUME_FROM_BEGINNING',
    schemas.bool(true),
    'With no committed offset, start at the oldest event (true) or only new ones.',
  ),
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
