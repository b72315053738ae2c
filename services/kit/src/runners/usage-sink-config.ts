import { env, schemas } from '../config/env.js';
import { DEFAULT_TOPICS } from '../contracts/topics.js';

/**
 * What every consumer of usage events (the ClickHouse sink, the OpenMeter forwarder) reads alike: the topic,
 * its own dead-letter topic, the consumer group and how it joins.
 */
export function usageEventsConsumerConfigSpec(
  service: string,
  deadLetters: { topic: string; doc: string },
  start: { fromBeginning: boolean; fromBeginningDoc: string } = {
    fromBeginning: true,
    fromBeginningDoc: 'With no committed offset, start at the oldest event (true) or only new ones.',
  },
) {
  return {
    usageEventsTopic: env(
      'USAGE_EVENTS_TOPIC',
      schemas.nonEmpty(DEFAULT_TOPICS.usageEvents),
      'Topic to read.',
    ),
    deadLetterTopic: env('DEAD_LETTER_TOPIC', schemas.nonEmpty(deadLetters.topic), deadLetters.doc),
    topicReplicationFactor: env(
      'TOPIC_REPLICATION_FACTOR',
      schemas.int(1, 1),
      'Replication factor of the dead-letter topic when this service creates it.',
    ),
    consumerGroup: env('CONSUMER_GROUP_ID', schemas.nonEmpty(service), 'Kafka consumer group id.'),
    sessionTimeoutMs: env(
      'SESSION_TIMEOUT_MS',
      schemas.int(30_000, 6_000, 300_000),
      "Consumer group session timeout: how soon a dead replica's partitions move to the others.",
    ),
    fromBeginning: env('CONSUME_FROM_BEGINNING', schemas.bool(start.fromBeginning), start.fromBeginningDoc),
  } as const;
}

/**
 * The back-off of a sink's batch consumer while its destination (`ClickHouse`, `OpenMeter`) fails: the first
 * retry delay and the cap, with the sink's own defaults.
 */
export function usageSinkRetryConfigSpec(
  destination: string,
  defaults: { initialMs: number; maxMs: number },
) {
  return {
    retryInitialMs: env(
      'RETRY_INITIAL_MS',
      schemas.int(defaults.initialMs, 1),
      `First retry delay while ${destination} fails.`,
    ),
    retryMaxMs: env('RETRY_MAX_MS', schemas.int(defaults.maxMs, 1), 'Longest retry delay (the backoff cap).'),
  } as const;
}
