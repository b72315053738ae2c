import { ConfigError, defaultTopicSpecs, ensureTopics, partitionCounts, type Logger } from '@gpu-meter/kit';
import type { Admin } from 'kafkajs';
import type { AggregatorConfig } from './config.js';

/** Creates missing topics (when allowed) and refuses raw topics whose partitions do not fit TASKS. */
export async function prepareTopics(admin: Admin, config: AggregatorConfig, logger: Logger): Promise<number> {
  if (config.autoCreateTopics) {
    const created = await ensureTopics(
      admin,
      defaultTopicSpecs(
        {
          podAllocations: config.podAllocationsTopic,
          bandwidthSamples: config.bandwidthSamplesTopic,
          usageEvents: config.usageEventsTopic,
          lateSamples: config.lateSamplesTopic,
          deadLetters: config.deadLettersTopic,
        },
        config.topicPartitions,
        config.topicReplicationFactor,
      ),
    );
    if (created.length > 0) logger.info({ created }, 'created topics');
  }
  const counts = await partitionCounts(admin, [config.podAllocationsTopic, config.bandwidthSamplesTopic]);
  return checkPartitions(config, counts);
}

/**
 * Each raw topic must exist and have a multiple of TASKS partitions: task p owns partitions q ≡ p (mod
 * TASKS), so a pod's or GPU's samples, keyed by it, stay in one task whatever multiple a producer's metadata
 * says. Returns the task count.
 */
export function checkPartitions(config: AggregatorConfig, counts: Map<string, number>): number {
  const topics = [
    ['POD_ALLOCATIONS_TOPIC', config.podAllocationsTopic],
    ['BANDWIDTH_SAMPLES_TOPIC', config.bandwidthSamplesTopic],
  ] as const;
  for (const [variable, topic] of topics) {
    const count = counts.get(topic);
    if (count === undefined) throw new ConfigError(variable, `topic ${topic} does not exist`);
    if (count % config.tasks !== 0)
      throw new ConfigError(
        'TASKS',
        `is ${config.tasks}, but ${topic} has ${count} partitions: each raw topic needs a multiple of TASKS ` +
          '(set TASKS to a divisor of both counts, for good: it must not change once the group committed)',
      );
  }
  return config.tasks;
}
