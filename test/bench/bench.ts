/**
 * `npm run bench [-- --samples N --partitions P --events M]`: the benchmark harness (never a timed test).
 * Runs against the local stack (.stack/env) or the services named in the environment and prints one JSON
 * object per measurement, then a summary table. Sizes default to a few minutes on 2 cores.
 */
import { parseArgs } from 'node:util';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { BandwidthSample, PodAllocationSample, UsageEvent } from '@gpu-meter/kit/contracts';
import { readConfig } from '@gpu-meter/kit/config';
import { podSampleKey } from '@gpu-meter/kit/runai';
import { createSchemaRegistry, TopicSerde } from '@gpu-meter/kit/kafka';
import { ClickHouse, clickhouseConfigSpec } from '@gpu-meter/kit/clickhouse';
import { FakeOpenMeter } from '../support/fake-openmeter.js';
import { ServiceProcess } from '../support/processes.js';
import { ENDPOINT_KEYS, endpointsFromEnvironment } from '../support/stack-env.js';
import { usageEventFixture } from '../support/fixtures.js';
import {
  aggregatorBacklog,
  benchAggregatorEnv,
  benchSamples,
  percentile,
  type BenchTopics,
} from './samples.js';
import { measureMemory } from './memory.js';

const { values: args } = parseArgs({
  options: {
    // 500k, not fewer: with 100k the aggregator's run lasts about a second, and its start-up (the worker
    // thread's JIT warm-up, the first schema fetch, the first transactions) is a third of what is timed.
    samples: { type: 'string', default: '500000' },
    partitions: { type: 'string', default: '4' },
    events: { type: 'string', default: '20000' },
    'latency-seconds': { type: 'string', default: '20' },
    only: { type: 'string' },
  },
});
const N = Number(args.samples);
const P = Number(args.partitions);
const M = Number(args.events);
const only = args.only?.split(',');
const wanted = (name: string) => !only || only.includes(name);

const stackEnv = endpointsFromEnvironment();
const missing = ENDPOINT_KEYS.filter((key) => !stackEnv[key]);
if (missing.length > 0) throw new Error(`${missing.join(', ')} not set: run \`npm run stack:up\` first`);
const kafka = new Kafka({
  clientId: 'bench',
  brokers: stackEnv.KAFKA_BROKERS!.split(','),
  logLevel: logLevel.NOTHING,
});
const registrySettings = { schemaRegistryUrl: stackEnv.SCHEMA_REGISTRY_URL! };
const schemaRegistry = createSchemaRegistry(registrySettings);
const admin = kafka.admin();
await admin.connect();
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
const results: Array<Record<string, unknown>> = [];
const run = `${Date.now().toString(36)}`;

function emit(result: Record<string, unknown>): void {
  results.push(result);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function createTopics(names: string[], partitions: number): Promise<void> {
  await admin.createTopics({
    topics: names.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
    waitForLeaders: true,
  });
}

async function sendAll(
  target: Producer,
  topic: string,
  messages: Array<{ key: string; value: Buffer; partition?: number }>,
) {
  for (let i = 0; i < messages.length; i += 5000) {
    await target.send({ topic, acks: -1, messages: messages.slice(i, i + 5000) });
  }
}

/** Topics and encoded samples ready to send; `produce()` sends them and returns the end offsets. */
async function prepareSamples(tag: string, count: number, partitions: number) {
  const topics = {
    pod: `bench.pods.${run}.${tag}`,
    bandwidth: `bench.bw.${run}.${tag}`,
    usage: `bench.usage.${run}.${tag}`,
  };
  await createTopics(Object.values(topics), partitions);
  const serdes = {
    pod: new TopicSerde<PodAllocationSample>(
      schemaRegistry,
      registrySettings,
      topics.pod,
      'podAllocationSample',
    ),
    bandwidth: new TopicSerde<BandwidthSample>(
      schemaRegistry,
      registrySettings,
      topics.bandwidth,
      'bandwidthSample',
    ),
  };
  for (const serde of Object.values(serdes)) await serde.register();
  const backlog = aggregatorBacklog(
    { pod: (s) => serdes.pod.encode(s), bandwidth: (s) => serdes.bandwidth.encode(s) },
    count,
    partitions,
  );
  const produce = async () => {
    await sendAll(producer, topics.pod, backlog.pod);
    await sendAll(producer, topics.bandwidth, backlog.bandwidth);
    return admin.fetchTopicOffsets(topics.pod);
  };
  return { topics, produce, total: backlog.pod.length };
}

async function preloadSamples(tag: string, count: number, partitions: number) {
  const { topics, produce, total } = await prepareSamples(tag, count, partitions);
  return { topics, ends: await produce(), total };
}

/** A plain kafkajs consumer over the same topic; with `decode`, it also decodes every Avro value. */
async function baseline(
  topic: string,
  total: number,
  decode?: TopicSerde<PodAllocationSample>,
): Promise<number> {
  const consumer = kafka.consumer({
    groupId: `bench-baseline-${run}-${topic}-${decode ? 'decode' : 'raw'}`,
    maxBytesPerPartition: 1_048_576,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  let first = 0;
  let last = 0;
  await consumer.run({
    eachBatch: async ({ batch }) => {
      if (first === 0) first = performance.now();
      if (decode) for (const message of batch.messages) decode.decodeKnown(message.value);
      seen += batch.messages.length;
      last = performance.now();
    },
  });
  while (seen < total) await sleep(20);
  await consumer.disconnect();
  return total / ((last - first) / 1000);
}

function aggregatorEnv(topics: BenchTopics, group: string): Record<string, string> {
  return benchAggregatorEnv(stackEnv, topics, group, P);
}

/**
 * Times `instances` aggregators over `count` samples until every partition's commit reaches the end.
 * 'backlog': the samples are on the topic before the instance starts (timed from its ready line).
 * 'arriving': the instances start and settle their group first, then the samples are produced (timed from
 * the first send, so it includes producing) — the fair way to compare one instance with two, since a second
 * instance joining mid-backlog would only time the rebalance.
 */
async function aggregatorThroughput(
  tag: string,
  instances: number,
  count: number,
  mode: 'backlog' | 'arriving' = 'backlog',
): Promise<{ rate: number; seconds: number }> {
  const { topics, produce, total } = await prepareSamples(tag, count, P);
  const preloaded = mode === 'backlog' ? await produce() : undefined;
  const group = `bench-aggregator-${run}-${tag}`;
  const processes = Array.from({ length: instances }, () =>
    new ServiceProcess('usage-aggregator', aggregatorEnv(topics, group)).start(),
  );
  try {
    await Promise.all(processes.map((process) => process.waitForLog(/aggregator ready/, 120_000)));
    if (instances > 1) await sleep(5_000); // let the group settle with every member
    const started = performance.now();
    const ends = preloaded ?? (await produce());
    const target = new Map(ends.map((end) => [end.partition, Number(end.high) - 1]));
    for (;;) {
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topics.pod] });
      const done = committed!.partitions.every((p) => Number(p.offset) >= target.get(p.partition)!);
      if (done) break;
      for (const process of processes)
        if (!process.running) throw new Error(`aggregator died:\n${process.tail()}`);
      await sleep(50);
    }
    const seconds = (performance.now() - started) / 1000;
    return { rate: total / seconds, seconds };
  } finally {
    for (const process of processes) await process.kill();
  }
}

/** Live: samples appended in real time; latency = usage event visible (read_committed) - window end - grace. */
async function aggregatorLatency(seconds: number) {
  const windowMs = 1000;
  const graceMs = 200;
  const intervalMs = 100;
  const topics = {
    pod: `bench.pods.${run}.live`,
    bandwidth: `bench.bw.${run}.live`,
    usage: `bench.usage.${run}.live`,
  };
  await createTopics(Object.values(topics), P);
  const serde = new TopicSerde<PodAllocationSample>(
    schemaRegistry,
    registrySettings,
    topics.pod,
    'podAllocationSample',
  );
  await serde.register();
  const usageSerde = new TopicSerde<UsageEvent>(schemaRegistry, registrySettings, topics.usage, 'usageEvent');
  const group = `bench-latency-${run}`;
  const aggregator = new ServiceProcess('usage-aggregator', {
    ...aggregatorEnv(topics, group),
    WINDOW_MS: String(windowMs),
    GRACE_MS: String(graceMs),
    TICK_MS: '50',
  }).start();
  const latencies: number[] = [];
  const reader = kafka.consumer({ groupId: `${group}-reader`, readUncommitted: false, maxWaitTimeInMs: 20 });
  try {
    await aggregator.waitForLog(/aggregator ready/, 120_000);
    await reader.connect();
    await reader.subscribe({ topics: [topics.usage], fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => {
        const event = await usageSerde.decode(message.value);
        latencies.push(Date.now() - (event.windowEndMs + graceMs));
      },
    });
    const pods = 200;
    const stopAt = Date.now() + seconds * 1000;
    let sent = 0;
    while (Date.now() < stopAt) {
      const t = Math.floor(Date.now() / intervalMs) * intervalMs;
      const batch = [
        ...benchSamples({ count: pods, pods, subjects: 40, intervalMs, startMs: t - intervalMs }),
      ];
      await producer.send({
        topic: topics.pod,
        acks: -1,
        messages: batch.map((s) => ({ key: podSampleKey(s), value: serde.encode(s) })),
      });
      sent += batch.length;
      const next = t + intervalMs;
      await sleep(Math.max(0, next - Date.now()));
    }
    await sleep(3000);
    latencies.sort((a, b) => a - b);
    return {
      sent,
      events: latencies.length,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      windowMs,
      graceMs,
      intervalMs,
    };
  } finally {
    await reader.disconnect();
    await aggregator.kill();
  }
}

async function preloadUsageEvents(tag: string, count: number) {
  const topic = `bench.events.${run}.${tag}`;
  await createTopics([topic], P);
  const serde = new TopicSerde<UsageEvent>(schemaRegistry, registrySettings, topic, 'usageEvent');
  await serde.register();
  const messages = Array.from({ length: count }, (_, i) => {
    const event = usageEventFixture({
      id: `bench-${run}-${tag}-${i}`,
      subject: `customer-${i % 200}`,
      windowStartMs: 1_767_225_600_000 + (i % 1440) * 60_000,
    });
    return {
      key: event.subject,
      value: serde.encode({ ...event, windowEndMs: event.windowStartMs + 60_000 }),
    };
  });
  await sendAll(producer, topic, messages);
  return topic;
}

async function sinkThroughput(count: number) {
  const topic = await preloadUsageEvents('sink', count);
  const database = `bench_${run}`;
  const batchMaxRows = '5000';
  const sink = new ServiceProcess('clickhouse-sink', {
    ...stackEnv,
    LOG_LEVEL: 'info',
    OPS_PORT: '0',
    USAGE_EVENTS_TOPIC: topic,
    DEAD_LETTER_TOPIC: `${topic}.dlq`,
    CONSUMER_GROUP_ID: `bench-sink-${run}`,
    CLICKHOUSE_DATABASE: database,
    BATCH_MAX_ROWS: batchMaxRows,
    BATCH_MAX_WAIT_MS: '500',
  }).start();
  const clickhouse = new ClickHouse(
    readConfig(clickhouseConfigSpec, { ...stackEnv, CLICKHOUSE_DATABASE: database }),
  );
  try {
    let started = 0;
    for (;;) {
      if (!sink.running) throw new Error(`sink died:\n${sink.tail()}`);
      const rows = await clickhouse
        .query<{ n: string }>(`SELECT count() AS n FROM ${database}.usage_events`)
        .then((r) => Number(r[0]?.n ?? 0))
        .catch(() => -1);
      if (rows >= 0 && started === 0) started = performance.now();
      if (rows >= count) break;
      await sleep(50);
    }
    const seconds = (performance.now() - started) / 1000;
    return { rowsPerSecond: count / seconds, seconds, rows: count, batchMaxRows: Number(batchMaxRows) };
  } finally {
    await sink.kill();
    await clickhouse.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
    await clickhouse.close();
  }
}

async function forwarderThroughput(count: number) {
  const topic = await preloadUsageEvents('forwarder', count);
  const openMeter = new FakeOpenMeter({ token: 'bench-token' });
  const url = await openMeter.start();
  const batchMaxEvents = '500';
  const forwarder = new ServiceProcess('openmeter-forwarder', {
    ...stackEnv,
    LOG_LEVEL: 'info',
    OPS_PORT: '0',
    USAGE_EVENTS_TOPIC: topic,
    DEAD_LETTER_TOPIC: `${topic}.dlq`,
    CONSUMER_GROUP_ID: `bench-forwarder-${run}`,
    // The events are preloaded: a deliberate backfill (a new group starts at the end by default).
    CONSUME_FROM_BEGINNING: 'true',
    OPENMETER_URL: url,
    OPENMETER_TOKEN: 'bench-token',
    BATCH_MAX_EVENTS: batchMaxEvents,
  }).start();
  try {
    let started = 0;
    while (openMeter.events.length < count) {
      if (!forwarder.running) throw new Error(`forwarder died:\n${forwarder.tail()}`);
      if (started === 0 && openMeter.events.length > 0) started = performance.now();
      await sleep(20);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      eventsPerSecond: count / seconds,
      seconds,
      events: count,
      batchMaxEvents: Number(batchMaxEvents),
    };
  } finally {
    await forwarder.kill();
    await openMeter.stop();
  }
}

const summary: string[] = [];
if (wanted('aggregator')) {
  const single = await aggregatorThroughput('single', 1, N);
  const { topics, total } = await preloadSamples('baseline', N, P);
  const baselineRate = await baseline(topics.pod, total);
  const decodeSerde = new TopicSerde<PodAllocationSample>(
    schemaRegistry,
    registrySettings,
    topics.pod,
    'podAllocationSample',
  );
  await decodeSerde.register();
  const decodingRate = await baseline(topics.pod, total, decodeSerde);
  emit({
    bench: 'baseline-consume-decode',
    messagesPerSecond: Math.round(decodingRate),
    messages: total,
    partitions: P,
  });
  emit({
    bench: 'baseline-consume',
    messagesPerSecond: Math.round(baselineRate),
    messages: total,
    partitions: P,
  });
  const ratio = single.rate / baselineRate;
  emit({
    bench: 'aggregator-exactly-once',
    samplesPerSecond: Math.round(single.rate),
    seconds: single.seconds,
    samples: N,
    partitions: P,
    ratio: Number(ratio.toFixed(3)),
    ratioToDecodingConsumer: Number((single.rate / decodingRate).toFixed(3)),
  });
  summary.push(
    `baseline consume          ${Math.round(baselineRate)} msg/s (raw), ${Math.round(decodingRate)} msg/s (with Avro decode)`,
  );
  summary.push(`aggregator (EOS, 1 inst)  ${Math.round(single.rate)} samples/s   ratio ${ratio.toFixed(3)}`);
}
if (wanted('latency')) {
  const latency = await aggregatorLatency(Number(args['latency-seconds']));
  emit({ bench: 'aggregator-latency', ...latency });
  summary.push(
    `aggregator latency        p50 ${latency.p50} ms  p99 ${latency.p99} ms (append of the closing sample -> event committed)`,
  );
}
if (wanted('scaling')) {
  const one = await aggregatorThroughput('scale1', 1, N, 'arriving');
  const two = await aggregatorThroughput('scale2', 2, N, 'arriving');
  emit({
    bench: 'aggregator-scaling',
    partitions: P,
    oneInstance: Math.round(one.rate),
    twoInstances: Math.round(two.rate),
    speedup: Number((two.rate / one.rate).toFixed(3)),
  });
  summary.push(
    `aggregator scaling        1 inst ${Math.round(one.rate)}/s, 2 inst ${Math.round(two.rate)}/s on ${P} partitions`,
  );
}
if (wanted('sink')) {
  const sink = await sinkThroughput(M);
  emit({ bench: 'clickhouse-sink', ...sink });
  summary.push(
    `clickhouse-sink           ${Math.round(sink.rowsPerSecond)} rows/s (batch ${sink.batchMaxRows})`,
  );
}
if (wanted('forwarder')) {
  const forwarder = await forwarderThroughput(M);
  emit({ bench: 'openmeter-forwarder', ...forwarder });
  summary.push(
    `openmeter-forwarder       ${Math.round(forwarder.eventsPerSecond)} events/s (batch ${forwarder.batchMaxEvents})`,
  );
}
if (wanted('memory')) {
  const memory = await measureMemory();
  emit({ bench: 'aggregator-memory', ...memory });
  summary.push(
    `memory                    ${memory.heapBytesPer100kDedupeIds} B heap / 100k dedupe ids, ${memory.heapBytesPer10kGroups} B heap / 10k groups`,
  );
}
await producer.disconnect();
await admin.disconnect();
process.stdout.write(`\n${summary.join('\n')}\n`);
