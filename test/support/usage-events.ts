import { USAGE_QUANTITIES, type UsageEvent, type UsageQuantity } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import { createSchemaRegistry, TopicSerde } from '@gpu-meter/kit/kafka';
import type { Kafka } from 'kafkajs';
import { usageEventFixture } from './fixtures.js';
import { stackEnv, testKafka } from './kafka.js';

/**
 * Usage events for sink tests: varied subjects, dimensions and awkward quantities (fractions, large
 * byte counts), a share of corrections, produced straight into a usage topic the way the aggregator
 * writes it (Avro, Confluent wire format, transactional).
 */
export function makeUsageEvents(count: number, seed = 1, prefix = 'ev'): UsageEvent[] {
  let state = seed >>> 0 || 1;
  const random = () => {
    // xorshift32: reproducible without a dependency.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const subjects = ['acme', 'globex', 'initech', 'umbrella'];
  const gpuTypes = ['NVIDIA-A100-SXM4-80GB', 'NVIDIA-H100-80GB-HBM3', 'NVIDIA-L4', ''];
  const workloads = ['Training', 'Interactive', 'Inference', 'DistributedWorkload'];
  const base = Date.UTC(2026, 0, 31, 22, 0, 0); // spans a month boundary
  return Array.from({ length: count }, (_, i) => {
    const windowStartMs = base + (Math.floor(random() * 6 * 3600) * 60_000) / 60;
    const start = windowStartMs - (windowStartMs % 60_000);
    // GPU- and core-seconds range from a sliver (a fractional pod that ended 1 ms into the window) to a
    // full node; byte quantities are large. Tiny fractions are where text float parsing goes wrong.
    const seconds = () =>
      random() < 0.3
        ? random() * 10 ** -(1 + Math.floor(random() * 5))
        : Math.floor(random() * 8) * 7.5 + random();
    const quantities = Object.fromEntries(
      USAGE_QUANTITIES.map((q) => [
        q,
        q.endsWith('Seconds') && !q.endsWith('ByteSeconds') ? seconds() : random() * 1e12,
      ]),
    ) as Record<UsageQuantity, number>;
    return usageEventFixture({
      id: `${prefix}-${seed}-${i}`,
      subject: subjects[Math.floor(random() * subjects.length)]!,
      windowStartMs: start,
      windowEndMs: start + 60_000,
      project: `team-${Math.floor(random() * 5)}`,
      department: `dept-${Math.floor(random() * 3)}`,
      workloadType: workloads[Math.floor(random() * workloads.length)]!,
      gpuType: gpuTypes[Math.floor(random() * gpuTypes.length)]!,
      sampleCount: 1 + Math.floor(random() * 8),
      correction: random() < 0.1,
      ...quantities,
    });
  });
}

export async function usageSerde(topic: string): Promise<TopicSerde<UsageEvent>> {
  const env = stackEnv();
  const settings = { schemaRegistryUrl: env.SCHEMA_REGISTRY_URL! };
  const serde = new TopicSerde<UsageEvent>(createSchemaRegistry(settings), settings, topic, 'usageEvent');
  // Retried like the services' registration: a registry that stalls on a loaded machine fails the first try.
  await serde.registerRetrying(createLogger('test-registry', 'warn'));
  return serde;
}

/** Produces in transactions of `chunk` events, as the aggregator does (consumers read read_committed). */
export async function produceUsageEvents(
  topic: string,
  events: readonly UsageEvent[],
  options: { serde?: TopicSerde<UsageEvent>; kafka?: Kafka; chunk?: number; extra?: Buffer[] } = {},
): Promise<void> {
  const serde = options.serde ?? (await usageSerde(topic));
  const kafka = options.kafka ?? testKafka();
  const producer = kafka.producer({
    transactionalId: `test-usage-${topic}-${Math.random().toString(36).slice(2, 8)}`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    const chunk = options.chunk ?? 500;
    for (let i = 0; i < events.length; i += chunk) {
      const transaction = await producer.transaction();
      await transaction.send({
        topic,
        messages: events
          .slice(i, i + chunk)
          .map((event) => ({ key: event.subject, value: serde.encode(event) })),
      });
      await transaction.commit();
    }
    if (options.extra?.length) {
      const transaction = await producer.transaction();
      await transaction.send({ topic, messages: options.extra.map((value) => ({ key: 'poison', value })) });
      await transaction.commit();
    }
  } finally {
    await producer.disconnect();
  }
}

/** The topic's totals per subject: each distinct event id once (re-sent ids are the same event). */
export function totalsBySubject(events: readonly UsageEvent[]): Map<string, Record<UsageQuantity, number>> {
  const distinct = new Map(events.map((event) => [event.id, event]));
  const totals = new Map<string, Record<UsageQuantity, number>>();
  for (const event of distinct.values()) {
    const entry =
      totals.get(event.subject) ??
      (Object.fromEntries(USAGE_QUANTITIES.map((q) => [q, 0])) as Record<UsageQuantity, number>);
    for (const quantity of USAGE_QUANTITIES) entry[quantity] += event[quantity];
    totals.set(event.subject, entry);
  }
  return totals;
}

/** Relative difference, for float totals summed in a different order (docs/DESIGN.md §6: 1e-9). */
export function relativeError(actual: number, expected: number): number {
  if (expected === 0) return Math.abs(actual);
  return Math.abs(actual - expected) / Math.abs(expected);
}
