import { describe, expect, it } from 'vitest';
import { decodeOffsetMetadata } from '../src/offset-metadata.js';
import { startService } from '../../../test/support/processes.js';
import { readTopic, testAdmin } from '../../../test/support/kafka.js';
import {
  aggregatorEnv,
  byId,
  createAll,
  expectedTotals,
  expectTotals,
  grid,
  readEvents,
  sampleProducer,
  uniqueTopics,
  type AnySample,
} from './int-support.js';

async function lateReasons(topic: string): Promise<string[]> {
  const records = await readTopic(topic, { idleMs: 500 });
  return records.map(
    (r) =>
      `${r.message.headers?.['gpu-meter.source.topic']}:${r.message.headers?.['gpu-meter.source.partition']}@${r.message.headers?.['gpu-meter.source.offset']} ${r.message.headers?.['gpu-meter.reason']}`,
  );
}

const SUBJECTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];

/** Event times in the past, so the last windows close by idle advance once everything is read. */
function scenarioStart(): number {
  return Math.floor((Date.now() - 600_000) / 1000) * 1000;
}

describe('usage-aggregator against Kafka', () => {
  it('(a) emits usage events equal to the scenario totals', async () => {
    const admin = await testAdmin();
    const topics = uniqueTopics('agg-a');
    await createAll(admin, topics, 4);
    const producer = await sampleProducer(topics);
    const start = scenarioStart();
    const samples = grid(SUBJECTS, start, start + 5000);
    await producer.send(samples);
    const expected = expectedTotals(samples, 1000);
    const env = aggregatorEnv(topics);
    const service = startService('usage-aggregator', env);
    await service.waitForLog(/aggregator ready/);
    const events = await readEvents(topics, expected.size);
    expect(expectTotals(events, expected)).toEqual([]);
    expect(byId(events).size).toBe(expected.size);
    // The replay metadata travels with the offsets (kafkajs TxnOffsetCommit → OffsetFetch).
    const committed = await admin.fetchOffsets({
      groupId: env.CONSUMER_GROUP_ID!,
      topics: [topics.pods, topics.bandwidth],
    });
    const metadata = committed.flatMap((t) => t.partitions).filter((p) => Number(p.offset) >= 0);
    expect(metadata.length).toBeGreaterThan(0);
    for (const p of metadata)
      expect(decodeOffsetMetadata(p.metadata)).toMatchObject({ through: expect.any(Number) });
    expect(await lateReasons(topics.late)).toEqual([]);
  });

  it('(b) duplicates and reorders within grace change nothing', async () => {
    const admin = await testAdmin();
    const topics = uniqueTopics('agg-b');
    await createAll(admin, topics, 4);
    const producer = await sampleProducer(topics);
    const start = scenarioStart();
    const samples = grid(SUBJECTS, start, start + 5000);
    // Shuffle within 250 ms of event time (span 250 + jitter 250 <= grace 500) and repeat every third sample.
    const noisy: AnySample[] = [];
    samples.forEach((s, i) => {
      noisy.push(s);
      if (i % 3 === 0) noisy.push(s);
    });
    const jitter = (s: AnySample, i: number) => s.observedAtMs + ((i * 7919) % 250);
    const shuffled = noisy
      .map((s, i) => ({ s, k: jitter(s, i) }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.s);
    await producer.send(shuffled);
    const expected = expectedTotals(samples, 1000);
    const service = startService('usage-aggregator', aggregatorEnv(topics));
    await service.waitForLog(/aggregator ready/);
    const events = await readEvents(topics, expected.size);
    expect(expectTotals(events, expected)).toEqual([]);
    expect(await lateReasons(topics.late)).toEqual([]);
  });

  it('(e) dead-letters poison with its bytes and source headers, and the partition keeps flowing', async () => {
    const admin = await testAdmin();
    const topics = uniqueTopics('agg-e');
    await createAll(admin, topics, 2);
    const producer = await sampleProducer(topics);
    const start = scenarioStart();
    const badBytes = Buffer.from([7, 0, 0, 0, 1, 2, 3]);
    await producer.sendRaw(topics.pods, 'acme', badBytes);
    const negative = grid(['acme'], start - 1000, start - 750)[0]!;
    await producer.send([{ ...negative, id: 'negative', gpus: -1 } as AnySample]);
    const samples = grid(['acme'], start, start + 3000);
    await producer.send(samples);
    const expected = expectedTotals(samples, 1000);
    const service = startService('usage-aggregator', aggregatorEnv(topics));
    await service.waitForLog(/aggregator ready/);
    const events = await readEvents(topics, expected.size);
    expect(expectTotals(events, expected)).toEqual([]);
    const dead = await readTopic(topics.dead, { count: 2 });
    const headers = dead.map((r) =>
      Object.fromEntries(Object.entries(r.message.headers ?? {}).map(([k, v]) => [k, String(v)])),
    );
    expect(headers.map((h) => h['gpu-meter.source.topic'])).toEqual([topics.pods, topics.pods]);
    expect(headers.map((h) => h['gpu-meter.source.offset'])).toEqual(['0', '1']);
    expect(headers[0]!['gpu-meter.error.message']).toMatch(/magic byte/);
    expect(headers[1]!['gpu-meter.error.code']).toBe('GPUM_VALIDATION_FAILED');
    expect(headers[1]!['gpu-meter.error.message']).toMatch(/negative/);
    expect(dead[0]!.message.value).toEqual(badBytes);
    expect(headers[0]!['gpu-meter.source.partition']).toBe(headers[1]!['gpu-meter.source.partition']);
  });

  it('(f) a quiet partition still emits its last window after grace, by wall clock', async () => {
    const admin = await testAdmin();
    const topics = uniqueTopics('agg-f');
    await createAll(admin, topics, 2);
    const producer = await sampleProducer(topics);
    const service = startService(
      'usage-aggregator',
      aggregatorEnv(topics, { GRACE_MS: '1000', IDLE_ADVANCE_MS: '1000' }),
    );
    await service.waitForLog(/aggregator ready/);
    // Samples of the current window only; nothing after them can move the watermark past end + grace.
    const windowStart = Math.floor(Date.now() / 1000) * 1000;
    const samples = grid(['acme'], windowStart - 250, windowStart + 1000).filter(
      (s) => s.spanStartMs >= windowStart,
    );
    await producer.send(samples);
    const expected = expectedTotals(samples, 1000);
    const events = await readEvents(topics, expected.size, 30_000);
    expect(expectTotals(events, expected)).toEqual([]);
    // Emitted by the idle advance: never before the window's end + grace on the wall clock.
    const [record] = await readTopic(topics.events, { count: 1 });
    expect(Number(record!.message.timestamp)).toBeGreaterThanOrEqual(windowStart + 1000 + 1000);
  });
  it('(g) a step that closes more than a produce request holds commits every event', async () => {
    // One task closing thousands of groups at once (a backlog after an outage): ~1.4 MB of usage events in
    // one transaction, over the broker's 1 MiB max.message.bytes if sent as one record batch.
    const admin = await testAdmin();
    const topics = uniqueTopics('agg-g');
    await createAll(admin, topics, 1);
    const producer = await sampleProducer(topics);
    const start = scenarioStart();
    const subjects = Array.from({ length: 6000 }, (_, i) => `tenant-with-a-longish-name-${i}`);
    const samples = grid(subjects, start, start + 250);
    await producer.send(samples);
    const expected = expectedTotals(samples, 1000);
    const service = startService('usage-aggregator', aggregatorEnv(topics, { IDLE_ADVANCE_MS: '1000' }));
    await service.waitForLog(/aggregator ready/);
    const events = await readEvents(topics, expected.size, 60_000);
    expect(expected.size).toBe(subjects.length);
    expect(expectTotals(events, expected)).toEqual([]);
    expect(byId(events).size).toBe(expected.size);
    expect(service.output.filter((line) => line.includes('task failed'))).toEqual([]);
  });
});
