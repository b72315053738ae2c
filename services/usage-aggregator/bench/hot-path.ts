/**
 * The driver worker's per-record CPU cost without Kafka: N encoded pod samples, packed into batches as the
 * shell packs a fetched batch, through `DriverHost` (decode → driver.process) on this thread, plus the
 * encoding of the emitted events the shell does. Prints the best of R rounds as JSON.
 * `node --max-semi-space-size=64 --import tsx services/usage-aggregator/bench/hot-path.ts [N] [R]` (the
 * semi-space matches the worker's young generation; needs the registry of .stack/env).
 */
import type { PodAllocationSample, UsageEvent } from '@gpu-meter/kit/contracts';
import { createSchemaRegistry, TopicSerde } from '@gpu-meter/kit/kafka';
import { endpointsFromEnvironment } from '../../../test/support/stack-env.js';
import { benchSamples } from '../../../test/bench/samples.js';
import { packValues } from '../src/batch-transfer.js';
import { DriverHost } from '../src/driver-worker.js';

const N = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 5);
/** About what one 8 MiB fetch of a partition holds. */
const batchSize = 15_000;
const registrySettings = { schemaRegistryUrl: endpointsFromEnvironment().SCHEMA_REGISTRY_URL! };
const registry = createSchemaRegistry(registrySettings);
const podTopic = 'bench.hot-path.pods';
const serde = new TopicSerde<PodAllocationSample>(
  registry,
  registrySettings,
  podTopic,
  'podAllocationSample',
);
await serde.register();
const usage = new TopicSerde<UsageEvent>(registry, registrySettings, 'bench.hot-path.usage', 'usageEvent');
await usage.register();
const startMs = Math.floor((Date.now() - 24 * 3600_000) / 60_000) * 60_000;
const values = [...benchSamples({ count: N, pods: 2000, subjects: 200, intervalMs: 15_000, startMs })].map(
  (s) => serde.encode(s),
);
const settings = {
  podAllocationsTopic: podTopic,
  bandwidthSamplesTopic: 'bench.hot-path.bw',
  maxSampleSpanMs: 300_000,
  windowMs: 60_000,
  graceMs: 30_000,
  idleAdvanceMs: 30_000,
  latePolicy: 'correction' as const,
  dedupeRetentionMs: 86_400_000,
  samplingIntervalMs: 15_000,
  maxClockAheadMs: 60_000,
  tasks: 1,
};
let best = Infinity;
let events = 0;
for (let round = 0; round < rounds; round++) {
  const host = new DriverHost({ settings, registry: registrySettings });
  const nothing = { offset: null, metadata: null };
  const inputs = [settings.podAllocationsTopic, settings.bandwidthSamplesTopic].map((topic) => ({
    topic,
    partition: 0,
    committed: nothing,
  }));
  await host.handle({ op: 'assign', task: 0, inputs, nowMs: 0 });
  await host.handle({
    op: 'tick',
    task: 0,
    nowMs: 0,
    ends: [{ topic: settings.bandwidthSamplesTopic, partition: 0, end: 0 }],
  });
  events = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i += batchSize) {
    const batch = values.slice(i, Math.min(N, i + batchSize));
    const reply = await host.handle({
      op: 'process',
      partition: 0,
      topic: podTopic,
      values: packValues(batch),
      offsets: Float64Array.from(batch, (_, j) => i + j),
      // Appended as they were made: the broker's clock never trails a sample here.
      timestamps: new Float64Array(batch.length).fill(Number.MAX_SAFE_INTEGER),
      highWatermark: N,
      nextOffset: i + batch.length,
      nowMs: 3_600_000,
    });
    for (const e of reply.step!.events) usage.encode(e);
    events += reply.step!.events.length;
  }
  best = Math.min(best, performance.now() - t0);
}
process.stdout.write(
  `${JSON.stringify({ bench: 'aggregator-hot-path', samples: N, events, bestMs: Math.round(best), samplesPerSecond: Math.round(N / (best / 1000)) })}\n`,
);
