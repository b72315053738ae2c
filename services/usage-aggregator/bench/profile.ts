/**
 * CPU profile of the aggregator's hot path: preloads N pod samples (as `npm run bench` does), runs one
 * aggregator under `node --cpu-prof` until its commits reach the end, then SIGTERMs it so the profile is
 * written. `node --import tsx services/usage-aggregator/bench/profile.ts [N] [dir]`; then
 * `node services/usage-aggregator/bench/summarise-profile.mjs <dir>/*.cpuprofile`.
 */
import { spawn } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { createSchemaRegistry, TopicSerde, type PodAllocationSample } from '@gpu-meter/kit';
import { endpointsFromEnvironment } from '../../../test/support/stack-env.js';
import { benchSamples } from '../../../test/bench/samples.js';
import { bandwidthFixture } from '../../../test/support/fixtures.js';

const N = Number(process.argv[2] ?? 100_000);
const dir = process.argv[3] ?? '/tmp/prof';
const P = 4;
const stackEnv = endpointsFromEnvironment();
const kafka = new Kafka({
  clientId: 'profile',
  brokers: stackEnv.KAFKA_BROKERS!.split(','),
  logLevel: logLevel.NOTHING,
});
const registrySettings = { schemaRegistryUrl: stackEnv.SCHEMA_REGISTRY_URL! };
const registry = createSchemaRegistry(registrySettings);
const admin = kafka.admin();
await admin.connect();
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
const run = `prof.${Date.now().toString(36)}`;
const topics = { pod: `${run}.pods`, bandwidth: `${run}.bw`, usage: `${run}.usage` };
await admin.createTopics({
  topics: Object.values(topics).map((topic) => ({ topic, numPartitions: P, replicationFactor: 1 })),
  waitForLeaders: true,
});
const serde = new TopicSerde<PodAllocationSample>(
  registry,
  registrySettings,
  topics.pod,
  'podAllocationSample',
);
await serde.register();
const bwSerde = new TopicSerde(registry, registrySettings, topics.bandwidth, 'bandwidthSample');
await bwSerde.register();
const startMs = Math.floor((Date.now() - 24 * 3600_000) / 60_000) * 60_000;
const closer = startMs + 23 * 3600_000;
const messages: Array<{ key: string; value: Buffer; partition?: number }> = [
  ...benchSamples({ count: N, pods: 2000, subjects: 200, intervalMs: 15_000, startMs }),
].map((s) => ({ key: s.subject, value: serde.encode(s) }));
const [template] = benchSamples({ count: 1, pods: 1, subjects: 1, intervalMs: 15_000, startMs: closer });
for (let partition = 0; partition < P; partition += 1)
  messages.push({
    key: 'c',
    partition,
    value: serde.encode({ ...template!, id: `closer-${partition}`, subject: 'c' }),
  });
for (let i = 0; i < messages.length; i += 5000)
  await producer.send({ topic: topics.pod, acks: -1, messages: messages.slice(i, i + 5000) });
await producer.send({
  topic: topics.bandwidth,
  acks: -1,
  messages: Array.from({ length: P }, (_, partition) => ({
    key: 'c',
    partition,
    value: bwSerde.encode(
      bandwidthFixture({
        id: `bw-${partition}`,
        subject: 'c',
        observedAtMs: closer,
        spanStartMs: closer - 15_000,
        spanEndMs: closer,
      }),
    ),
  })),
});
const ends = await admin.fetchTopicOffsets(topics.pod);
const group = `${run}.group`;
const child = spawn(
  process.execPath,
  ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', 'services/usage-aggregator/src/main.ts'],
  {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      ...stackEnv,
      LOG_LEVEL: 'warn',
      OPS_PORT: '0',
      POD_ALLOCATIONS_TOPIC: topics.pod,
      BANDWIDTH_SAMPLES_TOPIC: topics.bandwidth,
      USAGE_EVENTS_TOPIC: topics.usage,
      LATE_SAMPLES_TOPIC: `${topics.usage}.late`,
      DEAD_LETTERS_TOPIC: `${topics.usage}.dlq`,
      CONSUMER_GROUP_ID: group,
      TRANSACTIONAL_ID_PREFIX: group,
      TOPIC_PARTITIONS: String(P),
    },
  },
);
const t0 = performance.now();
for (;;) {
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topics.pod] });
  if (
    committed!.partitions.every(
      (p) => Number(p.offset) >= Number(ends.find((e) => e.partition === p.partition)!.high) - 1,
    )
  )
    break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
process.stdout.write(
  `${JSON.stringify({ samples: messages.length, secondsIncludingStartup: (performance.now() - t0) / 1000 })}\n`,
);
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
await producer.disconnect();
await admin.disconnect();
