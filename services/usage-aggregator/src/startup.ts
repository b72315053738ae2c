import { ConfigError, defaultTopicSpecs, ensureTopics, partitionCounts, type Logger } from '@gpu-meter/kit';
import type { Admin } from 'kafkajs';
import type { AggregatorConfig } from './config.js';

/** Creates missing topics (when allowed) and refuses to run on raw topics that are not co-partitioned. */
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
  return checkCoPartitioned(config, counts);
}

export function checkCoPartitioned(config: AggregatorConfig, counts: Map<string, number>): number {
  const pods = counts.get(config.podAllocationsTopic);
  const bandwidth = counts.get(config.bandwidthSamplesTopic);
  if (pods === undefined)
    throw new ConfigError('POD_ALLOCATIONS_TOPIC', `topic ${config.podAllocationsTopic} does not exist`);
  if (bandwidth === undefined)
    throw new ConfigError('BANDWIDTH_SAMPLES_TOPIC', `topic ${config.bandwidthSamplesTopic} does not exist`);
  if (pods !== bandwidth) {
    throw new ConfigError(
      'BANDWIDTH_SAMPLES_TOPIC',
      `${config.bandwidthSamplesTopic} has ${bandwidth} partitions but ${config.podAllocationsTopic} has ${pods}; ` +
        'both raw topics must have the same partition count (one subject must land in the same task)',
    );
  }
  return pods;
}
