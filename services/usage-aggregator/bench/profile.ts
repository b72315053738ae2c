/**
 * CPU profile of the aggregator's hot path: preloads N pod samples (as `npm run bench` does), runs one
 * aggregator under `node --cpu-prof` until its commits reach the end, then SIGTERMs it so the profile is
 * written. `node --import tsx services/usage-aggregator/bench/profile.ts [N] [dir]`; then
 * `node services/usage-aggregator/bench/summarise-profile.mjs <dir>/*.cpuprofile`.
 */
import { spawn } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import type { BandwidthSample, PodAllocationSample } from '@gpu-meter/kit/contracts';
import { createSchemaRegistry, TopicSerde } from '@gpu-meter/kit/kafka';
import { endpointsFromEnvironment } from '../../../test/support/stack-env.js';
import { aggregatorBacklog, benchAggregatorEnv } from '../../../test/bench/samples.js';

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
const serdes = {
  pod: new TopicSerde<PodAllocationSample>(registry, registrySettings, topics.pod, 'podAllocationSample'),
  bandwidth: new TopicSerde<BandwidthSample>(registry, registrySettings, topics.bandwidth, 'bandwidthSample'),
};
for (const serde of Object.values(serdes)) await serde.register();
const backlog = aggregatorBacklog(
  { pod: (s) => serdes.pod.encode(s), bandwidth: (s) => serdes.bandwidth.encode(s) },
  N,
  P,
);
for (const [topic, messages] of [
  [topics.pod, backlog.pod],
  [topics.bandwidth, backlog.bandwidth],
] as const)
  for (let i = 0; i < messages.length; i += 5000)
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 5000) });
const ends = await admin.fetchTopicOffsets(topics.pod);
const group = `${run}.group`;
const child = spawn(
  process.execPath,
  ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', 'services/usage-aggregator/src/main.ts'],
  {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...benchAggregatorEnv(stackEnv, topics, group, P, 'warn') },
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
  `${JSON.stringify({ samples: backlog.pod.length, secondsIncludingStartup: (performance.now() - t0) / 1000 })}\n`,
);
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
await producer.disconnect();
await admin.disconnect();
