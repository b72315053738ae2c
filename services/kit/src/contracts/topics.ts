export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  /** retention.ms; -1 keeps forever. */
  readonly retentionMs?: number;
  readonly compacted?: boolean;
  /**
   * Stamp records with the broker's clock (message.timestamp.type=LogAppendTime) instead of the producer's:
   * the aggregator judges a sample's observation time against it, so a producer's wrong clock is caught.
   */
  readonly logAppendTime?: boolean;
}

/** Default topic names (docs/DESIGN.md §1); every service takes the actual names from configuration. */
export const DEFAULT_TOPICS = {
  podAllocations: 'runai.pod-allocations.v1',
  bandwidthSamples: 'gpu.bandwidth-samples.v1',
  usageEvents: 'usage.events.v1',
  lateSamples: 'usage.late-samples.v1',
  deadLetters: 'usage.dead-letters.v1',
} as const;

const WEEK_MS = 7 * 24 * 3600 * 1000;

/**
 * Topic settings. The two raw topics must have the same partition count: both are keyed by billing subject,
 * so one subject lands in the same partition number of each and one aggregator task sees all of it.
 */
export function defaultTopicSpecs(
  topics: {
    podAllocations: string;
    bandwidthSamples: string;
    usageEvents: string;
    lateSamples: string;
    deadLetters: string;
  },
  partitions: number,
  replicationFactor: number,
): TopicSpec[] {
  return [
    {
      topic: topics.podAllocations,
      partitions,
      replicationFactor,
      retentionMs: WEEK_MS,
      logAppendTime: true,
    },
    {
      topic: topics.bandwidthSamples,
      partitions,
      replicationFactor,
      retentionMs: WEEK_MS,
      logAppendTime: true,
    },
    // Usage events are the billing record: keep them until someone decides otherwise.
    { topic: topics.usageEvents, partitions, replicationFactor, retentionMs: -1 },
    deadLetterTopicSpec(topics.lateSamples, replicationFactor),
    deadLetterTopicSpec(topics.deadLetters, replicationFactor),
  ];
}

/** A dead-letter (or late-sample) topic: one partition, kept four weeks for someone to look and replay. */
export function deadLetterTopicSpec(topic: string, replicationFactor: number): TopicSpec {
  return { topic, partitions: 1, replicationFactor, retentionMs: 4 * WEEK_MS };
}
