/**
 * The aggregator's per-record CPU cost without Kafka: N encoded pod samples → decode → driver.process in
 * batches (as the shell does) → encode of the emitted events. Prints the best of R rounds as JSON.
 * `node --import tsx services/usage-aggregator/bench/hot-path.ts [N] [R]` (needs the registry of .stack/env).
 */
import { createSchemaRegistry, TopicSerde, type PodAllocationSample, type UsageEvent } from '@gpu-meter/kit';
import { endpointsFromEnvironment } from '../../../test/support/stack-env.js';
import { benchSamples } from '../../../test/bench/samples.js';
import { decodeSample, decodeSampleKnown } from '../src/decode.js';
import { AggregatorDriver, type DriverRecord } from '../src/driver.js';
import { POD_ALLOCATION_FIELDS, type PodAllocationFields } from '../src/samples.js';

const N = Number(process.argv[2] ?? 100_000);
const rounds = Number(process.argv[3] ?? 5);
const batchSize = 3000;
const settings = { schemaRegistryUrl: endpointsFromEnvironment().SCHEMA_REGISTRY_URL! };
const registry = createSchemaRegistry(settings);
const serde = new TopicSerde<PodAllocationSample>(
  registry,
  settings,
  'bench.hot-path.pods',
  'podAllocationSample',
);
await serde.register();
// Decoded as the service's driver worker does: only the fields aggregation reads.
const reader = new TopicSerde<PodAllocationFields>(
  registry,
  settings,
  'bench.hot-path.pods',
  'podAllocationSample',
  {
    readFields: POD_ALLOCATION_FIELDS,
  },
);
const usage = new TopicSerde<UsageEvent>(registry, settings, 'bench.hot-path.usage', 'usageEvent');
await usage.register();
const startMs = Math.floor((Date.now() - 24 * 3600_000) / 60_000) * 60_000;
const values = [...benchSamples({ count: N, pods: 2000, subjects: 200, intervalMs: 15_000, startMs })].map(
  (s) => serde.encode(s),
);
const driverSettings = {
  podAllocationsTopic: 'pods',
  bandwidthSamplesTopic: 'bw',
  maxSampleSpanMs: 300_000,
  windowMs: 60_000,
  graceMs: 30_000,
  idleAdvanceMs: 30_000,
  latePolicy: 'late-topic' as const,
  dedupeRetentionMs: 300_000,
};
let best = Infinity;
let events = 0;
for (let round = 0; round < rounds; round++) {
  const driver = new AggregatorDriver(driverSettings);
  driver.assign(
    0,
    [
      { offset: null, metadata: null },
      { offset: null, metadata: null },
    ],
    0,
  );
  driver.observeEnd('bw', 0, 0);
  events = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i += batchSize) {
    const records: DriverRecord[] = [];
    for (let j = i; j < Math.min(N, i + batchSize); j++) {
      const decoded =
        decodeSampleKnown('pod', reader, values[j]!) ?? (await decodeSample('pod', reader, values[j]!));
      records.push({ topic: 'pods', partition: 0, offset: j, decoded });
    }
    driver.observeEnd('pods', 0, N);
    const step = driver.process(0, records, 3_600_000);
    for (const e of step.events) usage.encode(e);
    events += step.events.length;
  }
  best = Math.min(best, performance.now() - t0);
}
process.stdout.write(
  `${JSON.stringify({ bench: 'aggregator-hot-path', samples: N, events, bestMs: Math.round(best), samplesPerSecond: Math.round(N / (best / 1000)) })}\n`,
);
