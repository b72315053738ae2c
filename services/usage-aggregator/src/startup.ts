import { ConfigError, defaultTopicSpecs } from '@gpu-meter/kit/contracts';
import type { Logger } from '@gpu-meter/kit/runtime';
import { ensureTopics, partitionCounts } from '@gpu-meter/kit/kafka';
import type { Admin } from 'kafkajs';
import type { AggregatorConfig } from './config.js';
import { decodeOffsetMetadata } from './offset-metadata.js';

/**
 * Creates missing topics (when allowed), then decides the task count from the raw topics' partitions and
 * the group's committed offsets (`decideTasks`), refusing what does not fit.
 */
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
  const topics = [config.podAllocationsTopic, config.bandwidthSamplesTopic];
  const counts = await partitionCounts(admin, topics);
  const offsets =
    counts.size === 2 ? await admin.fetchOffsets({ groupId: config.consumerGroupId, topics }) : [];
  const committed = offsets.flatMap(({ topic, partitions }) =>
    partitions.map(({ partition, metadata }) => ({ topic, partition, metadata })),
  );
  return decideTasks(config, counts, committed);
}

export interface CommittedMetadata {
  readonly topic: string;
  readonly partition: number;
  readonly metadata: string | null;
}

/**
 * The deployment's task count, and a check that each raw topic has a multiple of it: task p owns
 * partitions q ≡ p (mod tasks), so a pod's or GPU's samples, keyed by it, stay in one task whatever
 * multiple a producer's metadata says. Fixed once the group has committed (every commit's metadata carries
 * it): TASKS if set (it must then agree), else the committed value, else — a new group — the greatest
 * common divisor of the raw topics' partition counts. Metadata of releases before TASKS (one task per
 * partition of co-partitioned topics) means the pod topic's count.
 */
export function decideTasks(
  config: Pick<AggregatorConfig, 'tasks' | 'podAllocationsTopic' | 'bandwidthSamplesTopic'>,
  counts: ReadonlyMap<string, number>,
  committed: readonly CommittedMetadata[],
): number {
  const topics = [
    ['POD_ALLOCATIONS_TOPIC', config.podAllocationsTopic],
    ['BANDWIDTH_SAMPLES_TOPIC', config.bandwidthSamplesTopic],
  ] as const;
  const sizes = topics.map(([variable, topic]) => {
    const count = counts.get(topic);
    if (count === undefined) throw new ConfigError(variable, `topic ${topic} does not exist`);
    return count;
  });
  const seen = new Set<number>();
  for (const c of committed) {
    const meta = decodeOffsetMetadata(c.metadata);
    if (meta) seen.add(meta.tasks ?? counts.get(config.podAllocationsTopic)!);
  }
  if (seen.size > 1)
    throw new ConfigError(
      'TASKS',
      `the group's committed offsets disagree on the task count (${[...seen].join(', ')})`,
    );
  const committedTasks = seen.size === 1 ? [...seen][0]! : undefined;
  if (config.tasks !== undefined && committedTasks !== undefined && config.tasks !== committedTasks)
    throw new ConfigError(
      'TASKS',
      `is ${config.tasks}, but the group committed with ${committedTasks} tasks; changing it would move pods ` +
        'and GPUs to other tasks mid-window (unset it, or set it back)',
    );
  const tasks = config.tasks ?? committedTasks ?? gcd(sizes[0]!, sizes[1]!);
  topics.forEach(([, topic], i) => {
    if (sizes[i]! % tasks !== 0)
      throw new ConfigError(
        'TASKS',
        `is ${tasks}, but ${topic} has ${sizes[i]} partitions: each raw topic needs a multiple of the task ` +
          'count (expand it to one)',
      );
  });
  return tasks;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
