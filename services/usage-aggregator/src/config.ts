import { DEFAULT_TOPICS } from '@gpu-meter/kit/contracts';
import { env, readConfig, requireWhen, schemas, type ConfigOf } from '@gpu-meter/kit/config';
import { opsConfigSpec } from '@gpu-meter/kit/runtime';
import { kafkaConfigSpec, registryConfigSpec } from '@gpu-meter/kit/kafka';
import type { DriverSettings } from './driver.js';

/** Every setting of the aggregator, from the environment (README's table is this spec). */
export const aggregatorConfigSpec = {
  ...kafkaConfigSpec,
  ...registryConfigSpec,
  ...opsConfigSpec,
  podAllocationsTopic: env(
    'POD_ALLOCATIONS_TOPIC',
    schemas.nonEmpty(DEFAULT_TOPICS.podAllocations),
    'Input: pod allocation samples.',
  ),
  bandwidthSamplesTopic: env(
    'BANDWIDTH_SAMPLES_TOPIC',
    schemas.nonEmpty(DEFAULT_TOPICS.bandwidthSamples),
    'Input: GPU bandwidth samples (a multiple of TASKS partitions, like the pod allocations topic).',
  ),
  usageEventsTopic: env(
    'USAGE_EVENTS_TOPIC',
    schemas.nonEmpty(DEFAULT_TOPICS.usageEvents),
    'Output: usage events (read it read_committed).',
  ),
  lateSamplesTopic: env(
    'LATE_SAMPLES_TOPIC',
    schemas.nonEmpty(DEFAULT_TOPICS.lateSamples),
    'Output: samples for closed windows, with the reason in headers.',
  ),
  deadLettersTopic: env(
    'DEAD_LETTERS_TOPIC',
    schemas.nonEmpty(DEFAULT_TOPICS.deadLetters),
    'Output: records that cannot be decoded or validated.',
  ),
  consumerGroupId: env(
    'CONSUMER_GROUP_ID',
    schemas.nonEmpty('usage-aggregator'),
    'Kafka consumer group; offsets are committed to it inside the transactions.',
  ),
  transactionalIdPrefix: env(
    'TRANSACTIONAL_ID_PREFIX',
    schemas.nonEmpty('usage-aggregator'),
    'Task p uses the transactional id <prefix>-<p>; unique per deployment.',
  ),
  windowMs: env(
    'WINDOW_MS',
    schemas.int(60_000, 1, 24 * 3600 * 1000),
    'Tumbling window length (aligned to the epoch).',
  ),
  samplingIntervalMs: env(
    'SAMPLING_INTERVAL_MS',
    schemas.int(15_000, 1),
    "The collectors' sampling interval (their SAMPLING_INTERVAL_MS); must divide WINDOW_MS. A sample whose span is not within the interval before its observation time is dead-lettered.",
  ),
  maxClockAheadMs: env(
    'MAX_CLOCK_AHEAD_MS',
    schemas.int(60_000, 0),
    "How far a sample's observation time may be ahead of its record's timestamp (the broker's clock: the raw topics use LogAppendTime) before it is dead-lettered; such a sample never moves stream time.",
  ),
  graceMs: env(
    'GRACE_MS',
    schemas.int(30_000, 0),
    'A window closes when stream time passes its end + grace (default 2 × 15 s sampling).',
  ),
  idleAdvanceMs: env(
    'IDLE_ADVANCE_MS',
    schemas
      .optionalString()
      .refine(
        (value) => value === undefined || /^\d+$/.test(value.trim()),
        'must be a non-negative integer (ms)',
      ),
    'Wall-clock silence after which a read-up input stops holding stream time back, and with all inputs quiet stream time follows the clock (default = GRACE_MS). A silence in contact with Kafka longer than half of it (an outage, a stalled machine) does not count as quiet; the quiet seen before it does. Keep it above the time your collectors need to deliver what they buffered once Kafka is back (or after they restart): samples that come later than this after going quiet can land in closed windows (late).',
  ),
  dedupeRetentionMs: env(
    'DEDUPE_RETENTION_MS',
    schemas.int(86_400_000, 0),
    "How long a sample id stays known after its window's end + grace, on the input's own time: a duplicate arriving within it is counted once, late or not (~16 bytes an id). A restart replays the raw topics back this far to rebuild it.",
  ),
  latePolicy: env(
    'LATE_POLICY',
    schemas.oneOf(['late-topic', 'correction'], 'correction'),
    'correction (default): a late sample is billed by a correction event for its window; late-topic: late samples go to LATE_SAMPLES_TOPIC unbilled (for a consumer of your own).',
  ),
  maxSampleSpanMs: env(
    'MAX_SAMPLE_SPAN_MS',
    schemas.int(300_000, 1),
    'Samples covering a longer span are dead-lettered.',
  ),
  tickMs: env(
    'TICK_MS',
    schemas.int(1000, 10),
    "How often idle tasks check the clock and the inputs' end offsets.",
  ),
  maxBytesPerPartition: env(
    'MAX_BYTES_PER_PARTITION',
    schemas.int(8_388_608, 1),
    'Fetch size per partition: bounds one transaction (larger batches, fewer transactions).',
  ),
  sessionTimeoutMs: env(
    'SESSION_TIMEOUT_MS',
    schemas.int(30_000, 6000),
    "Consumer group session timeout: how soon a dead instance's tasks move.",
  ),
  autoCreateTopics: env('AUTO_CREATE_TOPICS', schemas.bool(true), 'Create missing topics at start-up.'),
  topicPartitions: env('TOPIC_PARTITIONS', schemas.int(6, 1), 'Partitions of auto-created topics.'),
  tasks: env(
    'TASKS',
    schemas
      .optionalString()
      .refine(
        (value) => value === undefined || /^[1-9]\d*$/.test(value.trim()),
        'must be a positive integer',
      ),
    "Aggregation tasks; fixed for a deployment's life (every committed offset records it). Unset: the value the consumer group committed with, or for a new group the greatest common divisor of the raw topics' partition counts. Task p owns partitions q ≡ p (mod TASKS) of both raw topics, whose counts must be multiples of it: a pod's or GPU's samples then stay in one task when the topics are expanded to another multiple. Run up to TASKS aggregator instances.",
  ),
  topicReplicationFactor: env(
    'TOPIC_REPLICATION_FACTOR',
    schemas.int(1, 1),
    'Replication factor of auto-created topics.',
  ),
} as const;

export type AggregatorConfig = Omit<ConfigOf<typeof aggregatorConfigSpec>, 'idleAdvanceMs' | 'tasks'> & {
  idleAdvanceMs: number;
  /** TASKS as configured; the running value is decided at start-up (startup.ts `decideTasks`). */
  tasks: number | undefined;
};

/** The configuration once start-up decided the task count. */
export type RunningConfig = AggregatorConfig & { readonly tasks: number };

/**
 * The silence between contacts with Kafka that is left out of every input's quiet time
 * (`TaskSettings.contactGapMs`): half of IDLE_ADVANCE_MS, so an outage cannot use the idle advance up, but
 * never less than three ticks, so a slow tick or two on a busy machine does not count as an outage.
 */
export function contactGapMs(config: Pick<AggregatorConfig, 'idleAdvanceMs' | 'tickMs'>): number {
  return Math.max(config.idleAdvanceMs / 2, 3 * config.tickMs);
}

export function loadConfig(source: Record<string, string | undefined> = process.env): AggregatorConfig {
  const raw = readConfig(aggregatorConfigSpec, source);
  const idle = raw.idleAdvanceMs === undefined ? raw.graceMs : Number(raw.idleAdvanceMs);
  requireWhen(!Number.isSafeInteger(idle) || idle < 0, 'IDLE_ADVANCE_MS', 'must be a non-negative integer');
  requireWhen(
    raw.podAllocationsTopic === raw.bandwidthSamplesTopic,
    'BANDWIDTH_SAMPLES_TOPIC',
    'must differ from POD_ALLOCATIONS_TOPIC',
  );
  requireWhen(
    raw.windowMs % raw.samplingIntervalMs !== 0,
    'SAMPLING_INTERVAL_MS',
    `must divide WINDOW_MS ${raw.windowMs} (each window then holds whole sampling intervals)`,
  );
  const tasks = raw.tasks === undefined ? undefined : Number(raw.tasks);
  return Object.freeze({ ...raw, idleAdvanceMs: idle, tasks });
}

/** What the driver worker needs of the configuration. */
export function driverSettings(config: RunningConfig): DriverSettings {
  return {
    podAllocationsTopic: config.podAllocationsTopic,
    bandwidthSamplesTopic: config.bandwidthSamplesTopic,
    windowMs: config.windowMs,
    graceMs: config.graceMs,
    idleAdvanceMs: config.idleAdvanceMs,
    contactGapMs: contactGapMs(config),
    latePolicy: config.latePolicy,
    dedupeRetentionMs: config.dedupeRetentionMs,
    maxSampleSpanMs: config.maxSampleSpanMs,
    samplingIntervalMs: config.samplingIntervalMs,
    maxClockAheadMs: config.maxClockAheadMs,
    tasks: config.tasks,
  };
}
