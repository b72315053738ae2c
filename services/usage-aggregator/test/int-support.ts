import {
  deterministicId,
  USAGE_QUANTITIES,
  type BandwidthSample,
  type PodAllocationSample,
  type UsageEvent,
} from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import { createSchemaRegistry, sendInChunks, TopicSerde } from '@gpu-meter/kit/kafka';
import { Partitioners, type Admin, type Message } from 'kafkajs';
import { expect, onTestFinished } from 'vitest';
// The ProvidedContext augmentation (stackEnv) lives with the global setup.
import type {} from '../../../test/support/global-setup.js';
import { startService } from '../../../test/support/processes.js';
import { createTopics, readTopic, stackEnv, testKafka, uniqueName } from '../../../test/support/kafka.js';
import { bw, pod } from './harness.js';

/** Helpers for the aggregator's integration tests: unique topics, encoding, expected totals, reading. */
export interface Topics {
  pods: string;
  bandwidth: string;
  events: string;
  late: string;
  dead: string;
}

export function uniqueTopics(tag: string): Topics {
  const id = uniqueName(tag);
  return {
    pods: `${id}.pods`,
    bandwidth: `${id}.bw`,
    events: `${id}.events`,
    late: `${id}.late`,
    dead: `${id}.dead`,
  };
}

/** A fresh output side (events, late, dead letters) for another run over the same input topics. */
export function withOutputs(topics: Topics, tag: string): Topics {
  const id = uniqueName(tag);
  return { ...topics, events: `${id}.events`, late: `${id}.late`, dead: `${id}.dead` };
}

export async function createAll(admin: Admin, topics: Topics, partitions: number): Promise<void> {
  await createTopics(admin, Object.values(topics), partitions);
}

export async function createOutputs(admin: Admin, topics: Topics): Promise<void> {
  await createTopics(admin, [topics.events, topics.late, topics.dead], 1);
}

export function aggregatorEnv(topics: Topics, extra: Record<string, string> = {}): Record<string, string> {
  const env = stackEnv();
  return {
    KAFKA_BROKERS: env.KAFKA_BROKERS!,
    SCHEMA_REGISTRY_URL: env.SCHEMA_REGISTRY_URL!,
    POD_ALLOCATIONS_TOPIC: topics.pods,
    BANDWIDTH_SAMPLES_TOPIC: topics.bandwidth,
    USAGE_EVENTS_TOPIC: topics.events,
    LATE_SAMPLES_TOPIC: topics.late,
    DEAD_LETTERS_TOPIC: topics.dead,
    CONSUMER_GROUP_ID: uniqueName('agg-group'),
    TRANSACTIONAL_ID_PREFIX: uniqueName('agg-tx'),
    AUTO_CREATE_TOPICS: 'false',
    WINDOW_MS: '1000',
    // The tests' samples lie on a 250 ms grid.
    SAMPLING_INTERVAL_MS: '250',
    GRACE_MS: '500',
    DEDUPE_RETENTION_MS: '1000',
    // These tests check the late topic's records; correction mode (the default) has its own tests.
    LATE_POLICY: 'late-topic',
    SESSION_TIMEOUT_MS: '6000',
    TICK_MS: '200',
    OPS_PORT: '0',
    OPS_HOST: '127.0.0.1',
    ...extra,
  };
}

export async function serdes(topics: Topics) {
  const env = stackEnv();
  const settings = { schemaRegistryUrl: env.SCHEMA_REGISTRY_URL! };
  const registry = createSchemaRegistry(settings);
  const pods = new TopicSerde<PodAllocationSample>(registry, settings, topics.pods, 'podAllocationSample');
  const bandwidth = new TopicSerde<BandwidthSample>(registry, settings, topics.bandwidth, 'bandwidthSample');
  const events = new TopicSerde<UsageEvent>(registry, settings, topics.events, 'usageEvent');
  // Retried like the services' registration: a registry that stalls on a loaded machine fails the first try.
  const logger = createLogger('test-registry', 'warn');
  await pods.registerRetrying(logger);
  await bandwidth.registerRetrying(logger);
  return { pods, bandwidth, events };
}

export type AnySample = PodAllocationSample | BandwidthSample;

/** A producer keyed by subject with the default (Java-compatible) partitioner, like the collectors. */
export async function sampleProducer(topics: Topics) {
  const s = await serdes(topics);
  // Idempotent: a retried produce request must not append a batch twice (seen on this busy machine:
  // a whole batch re-appended 136 ms later, i.e. duplicates far beyond grace).
  const producer = testKafka().producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  onTestFinished(() => producer.disconnect());
  return {
    serdes: s,
    async send(samples: readonly AnySample[]) {
      const pods = samples.filter((x): x is PodAllocationSample => 'gpus' in x);
      const bws = samples.filter((x): x is BandwidthSample => !('gpus' in x));
      const send = (record: { topic: string; messages: Message[] }) => producer.send(record);
      await sendInChunks(
        send,
        topics.pods,
        pods.map((x) => ({ key: x.subject, value: s.pods.encode(x) })),
      );
      await sendInChunks(
        send,
        topics.bandwidth,
        bws.map((x) => ({ key: x.subject, value: s.bandwidth.encode(x) })),
      );
    },
    async sendRaw(topic: string, key: string, value: Buffer) {
      await producer.send({ topic, messages: [{ key, value }] });
    },
  };
}

/**
 * Samples of `subjects` pods on a 250 ms grid over [fromMs, toMs): one pod allocation and one bandwidth
 * sample per pod and tick, with fractional levels, so products are not integers.
 */
export function grid(subjects: readonly string[], fromMs: number, toMs: number): AnySample[] {
  const out: AnySample[] = [];
  for (let t = fromMs + 250; t <= toMs; t += 250) {
    subjects.forEach((subject, i) => {
      const common = {
        subject,
        project: `p-${subject}`,
        observedAtMs: t,
        spanStartMs: t - 250,
        spanEndMs: t,
      };
      out.push(
        pod({
          ...common,
          id: deterministicId('pod', subject, t),
          gpus: 0.5 + i,
          cpuCores: 1.25,
          memoryBytes: 3 * 2 ** 30,
        }),
      );
      out.push(
        bw({
          ...common,
          id: deterministicId('bw', subject, t),
          nvlinkTxBytesPerSecond: 1.1e9 + i,
          fbUsedBytes: 0.3 * 2 ** 30,
        }),
      );
    });
  }
  return out;
}

/** Expected events per (subject, window): computed here, independently of the service's code. */
export function expectedTotals(
  samples: readonly AnySample[],
  windowMs: number,
): Map<string, Record<string, number>> {
  const totals = new Map<string, Record<string, number>>();
  const seen = new Set<string>();
  for (const s of samples) {
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    for (let w = Math.floor(s.spanStartMs / windowMs) * windowMs; w < s.spanEndMs; w += windowMs) {
      const seconds = (Math.min(w + windowMs, s.spanEndMs) - Math.max(w, s.spanStartMs)) / 1000;
      const key = `${s.subject}@${w}`;
      const t = totals.get(key) ?? { sampleCount: 0 };
      t.sampleCount! += 1;
      const add = (q: string, v: number) => (t[q] = (t[q] ?? 0) + v * seconds);
      if ('gpus' in s) {
        add('gpuAllocationSeconds', s.gpus);
        add('cpuCoreSeconds', s.cpuCores);
        add('memoryByteSeconds', s.memoryBytes);
        add('gpuMemoryAllocatedByteSeconds', s.gpuMemoryBytes);
      } else {
        add('nvlinkTxBytes', s.nvlinkTxBytesPerSecond);
        add('nvlinkRxBytes', s.nvlinkRxBytesPerSecond);
        add('pcieTxBytes', s.pcieTxBytesPerSecond);
        add('pcieRxBytes', s.pcieRxBytesPerSecond);
        add('gpuMemoryUsedByteSeconds', s.fbUsedBytes);
      }
      totals.set(key, t);
    }
  }
  return totals;
}

export function expectTotals(
  events: readonly UsageEvent[],
  expected: Map<string, Record<string, number>>,
): string[] {
  const problems: string[] = [];
  const byKey = new Map(events.map((e) => [`${e.subject}@${e.windowStartMs}`, e]));
  if (byKey.size !== events.length)
    problems.push(`${events.length - byKey.size} events share a group and window`);
  for (const [key, t] of expected) {
    const e = byKey.get(key);
    if (!e) {
      problems.push(`missing ${key}`);
      continue;
    }
    if (e.sampleCount !== t.sampleCount)
      problems.push(`${key} sampleCount ${e.sampleCount} != ${t.sampleCount}`);
    for (const q of USAGE_QUANTITIES) {
      const want = t[q] ?? 0;
      if (Math.abs(e[q] - want) > 1e-9 * Math.abs(want)) problems.push(`${key} ${q} ${e[q]} != ${want}`);
    }
  }
  for (const key of byKey.keys()) if (!expected.has(key)) problems.push(`unexpected ${key}`);
  return problems;
}

/** Reads usage events read_committed: waits for `count`, then keeps reading until quiet to catch extras. */
export async function readEvents(topics: Topics, count: number, timeoutMs = 60_000): Promise<UsageEvent[]> {
  const s = await serdes(topics);
  await readTopic(topics.events, { count, timeoutMs });
  const records = await readTopic(topics.events, { idleMs: 1500 });
  return Promise.all(records.map((r) => s.events.decode(r.message.value)));
}

export function byId(events: readonly UsageEvent[]): Map<string, UsageEvent> {
  return new Map(events.map((e) => [e.id, e]));
}

/**
 * The verdict of every fault test: a fault-free aggregator over the same inputs (fresh outputs) must match
 * the expected totals, and the faulty run's events must be exactly its events — same ids, same values,
 * nothing twice.
 */
export async function expectSameAsFaultFree(
  admin: Admin,
  topics: Topics,
  faulty: readonly UsageEvent[],
  expected: ReturnType<typeof expectedTotals>,
  timing: Record<string, string>,
): Promise<void> {
  const plainTopics = withOutputs(topics, 'agg-plain');
  await createOutputs(admin, plainTopics);
  const plain = startService('usage-aggregator', aggregatorEnv(plainTopics, timing));
  await plain.waitForLog(/aggregator ready/);
  const plainEvents = await readEvents(plainTopics, expected.size, 120_000);
  expect(expectTotals(plainEvents, expected)).toEqual([]);
  expect(byId(faulty).size).toBe(faulty.length); // nothing twice
  const plainById = byId(plainEvents);
  const differing = faulty
    .filter((e) => JSON.stringify(e) !== JSON.stringify(plainById.get(e.id)))
    .map((e) => `${e.subject}@${e.windowStartMs}: ${e.sampleCount} vs ${plainById.get(e.id)?.sampleCount}`);
  expect(differing).toEqual([]);
  expect(byId(faulty)).toEqual(plainById); // same ids, same values
}
