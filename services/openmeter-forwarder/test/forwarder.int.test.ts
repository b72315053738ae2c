import { USAGE_QUANTITIES } from '@gpu-meter/kit/contracts';
import { DEAD_LETTER_HEADERS } from '@gpu-meter/kit/kafka';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FakeOpenMeter, type CloudEventLike } from '../../../test/support/fake-openmeter.js';
import {
  createTopics,
  readTopic,
  stackEnv,
  testAdmin,
  uniqueName,
  waitFor,
} from '../../../test/support/kafka.js';
import { freePort, readyz } from '../../../test/support/ops.js';
import { startService, type ServiceProcess } from '../../../test/support/processes.js';
import {
  makeUsageEvents,
  produceUsageEvents,
  relativeError,
  totalsBySubject,
  usageSerde,
} from '../../../test/support/usage-events.js';
import { RESPONSE_BODY_HEADER } from '../src/outcome.js';

const TOKEN = 'om-token-9d4c2b7e11aa';

async function scenario(extraEnv: Record<string, string> = {}, createDeadLetterTopic = true) {
  const stack = stackEnv();
  const topic = uniqueName('usage');
  const deadLetters = uniqueName('om-dlq');
  await createTopics(await testAdmin(), [topic], 3);
  if (createDeadLetterTopic) await createTopics(await testAdmin(), [deadLetters], 1);
  const fake = new FakeOpenMeter({ token: TOKEN });
  const url = await fake.start();
  onTestFinished(() => fake.stop());
  return {
    topic,
    deadLetters,
    fake,
    env: {
      KAFKA_BROKERS: stack.KAFKA_BROKERS!,
      SCHEMA_REGISTRY_URL: stack.SCHEMA_REGISTRY_URL!,
      USAGE_EVENTS_TOPIC: topic,
      DEAD_LETTER_TOPIC: deadLetters,
      CONSUMER_GROUP_ID: uniqueName('forwarder'),
      OPENMETER_URL: url,
      OPENMETER_TOKEN: TOKEN,
      OPENMETER_SOURCE: 'gpu-meter-it',
      OPENMETER_TIMEOUT_MS: '800',
      OPS_PORT: '0',
      BATCH_MAX_EVENTS: '100',
      BATCH_MAX_WAIT_MS: '200',
      RETRY_INITIAL_MS: '100',
      RETRY_MAX_MS: '1000',
      SESSION_TIMEOUT_MS: '6000',
      // The events are produced before the forwarder starts: a deliberate backfill (the default starts at the end).
      CONSUME_FROM_BEGINNING: 'true',
      ...extraEnv,
    },
  };
}

/** Totals per subject of what the fake accepted (deduplicated on (source, id) as OpenMeter does). */
function acceptedTotals(events: readonly CloudEventLike[]) {
  const totals = new Map<string, Record<string, number>>();
  for (const event of events) {
    const data = event.data as Record<string, number>;
    const entry =
      totals.get(String(event.subject)) ?? Object.fromEntries(USAGE_QUANTITIES.map((q) => [q, 0]));
    for (const quantity of USAGE_QUANTITIES) entry[quantity]! += data[quantity]!;
    totals.set(String(event.subject), entry);
  }
  return totals;
}

/** Event ids OpenMeter accepted more than once, from the raw requests (what no dedupe would bill twice). */
function acceptedTwice(fake: FakeOpenMeter): string[] {
  return [...fake.acceptedCounts()].filter(([, n]) => n > 1).map(([key]) => key);
}

function expectNoTokenInLogs(...processes: ServiceProcess[]) {
  for (const process of processes) {
    expect(
      process.output.filter((line) => line.includes(TOKEN)),
      'log lines containing the token',
    ).toEqual([]);
  }
}

describe('openmeter-forwarder against Kafka and the fake OpenMeter', () => {
  it('delivers everything exactly once through 429s, 500s and timeouts; an invalid event and an undecodable record are dead-lettered', async () => {
    const s = await scenario({}, false); // the forwarder creates its dead-letter topic
    const events = makeUsageEvents(1200, 5);
    // OpenMeter refuses an event without a subject; the forwarder passes it on and must isolate it.
    const invalid = { ...events[517]!, subject: '' };
    events[517] = invalid;
    const valid = events.filter((event) => event !== invalid);
    s.fake.failNext(
      { kind: 'status', status: 429, retryAfterSeconds: 1 },
      { kind: 'status', status: 500 },
      { kind: 'hang' },
      { kind: 'status', status: 503 },
      { kind: 'status', status: 429, retryAfterSeconds: 1 },
      { kind: 'hang' },
      { kind: 'status', status: 500 },
    );
    const serde = await usageSerde(s.topic);
    const poison = Buffer.from([0, 0, 0, 0, 1, 2, 3]); // a wire header, then no valid Avro
    await produceUsageEvents(s.topic, events, { serde, extra: [poison] });
    const forwarder = startService('openmeter-forwarder', s.env);
    await forwarder.waitForLog(/openmeter-forwarder started/);
    const dead = await readTopic(s.deadLetters, { count: 2, timeoutMs: 90_000 });
    await waitFor(`${valid.length} accepted events`, () => s.fake.events.length >= valid.length, 60_000, 200);
    expect(s.fake.pendingFaults).toBe(0);
    const statuses = s.fake.requests.map((r) => r.status);
    for (const status of [429, 500, 503, 'hung', 400]) expect(statuses).toContain(status);
    // Retry-After: 1 is honoured (the backoff alone would retry after 50-100 ms).
    s.fake.requests.forEach((request, i) => {
      if (request.status === 429) expect(s.fake.requests[i + 1]!.at - request.at).toBeGreaterThanOrEqual(950);
    });

    // Every valid event arrived once (by id), carrying the topic's totals.
    expect(s.fake.events.map((e) => e.id).sort()).toEqual(valid.map((e) => e.id).sort());
    const expected = totalsBySubject(valid);
    const actual = acceptedTotals(s.fake.events);
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [subject, totals] of expected) {
      for (const quantity of USAGE_QUANTITIES) {
        expect(
          relativeError(actual.get(subject)![quantity]!, totals[quantity]),
          `${subject} ${quantity}`,
        ).toBeLessThan(1e-9);
      }
    }
    expect(new Set(s.fake.events.map((e) => e.source))).toEqual(new Set(['gpu-meter-it']));

    // The one invalid event is dead-lettered with its original bytes and OpenMeter's answer.
    // ... and the undecodable record with its bytes and the decode error.
    const code = (record: (typeof dead)[number]) =>
      String(record.message.headers![DEAD_LETTER_HEADERS.errorCode]);
    const undecodable = dead.find((record) => code(record) === 'GPUM_DECODE_FAILED');
    expect(undecodable?.message.value).toEqual(poison);
    const rejected = dead.find((record) => code(record) === 'GPUM_SINK_REJECTED')!;
    const headers = rejected.message.headers!;
    expect(rejected.message.value).toEqual(serde.encode(invalid));
    expect(String(headers[DEAD_LETTER_HEADERS.sourceTopic])).toBe(s.topic);
    expect(String(headers[DEAD_LETTER_HEADERS.errorCode])).toBe('GPUM_SINK_REJECTED');
    expect(String(headers[RESPONSE_BODY_HEADER])).toContain('subject is required');
    expect(await readTopic(s.deadLetters, { idleMs: 1_500 })).toHaveLength(2);
    expectNoTokenInLogs(forwarder);
  });

  it('resumes after a SIGKILL without losing an event, and resends nothing OpenMeter acknowledged', async () => {
    const s = await scenario({ BATCH_MAX_EVENTS: '50' });
    const events = makeUsageEvents(1500, 6);
    const serde = await usageSerde(s.topic);
    // Three batches get through, the fourth hangs in flight: the process dies with it unacknowledged.
    s.fake.failNext({ kind: 'pass' }, { kind: 'pass' }, { kind: 'pass' }, { kind: 'hang' });
    const first = startService('openmeter-forwarder', s.env);
    // Records trickle in, as on a loaded machine where a fetch brings a few and the batch wait runs out.
    const produced = (async () => {
      for (let i = 0; i < events.length; i += 30) {
        await produceUsageEvents(s.topic, events.slice(i, i + 30), { serde });
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    })();
    await waitFor('a request in flight', () => s.fake.requests.some((r) => r.status === 'hung'), 60_000, 20);
    await first.kill('SIGKILL');
    // What OpenMeter holds is exactly what its three acknowledged requests carried, whatever their sizes.
    const acknowledged = s.fake.requests.filter((r) => r.status === 204);
    expect(acknowledged).toHaveLength(3);
    expect(acknowledged.every((r) => r.events > 0 && r.events <= 50)).toBe(true);
    expect(s.fake.events).toHaveLength(acknowledged.reduce((sum, r) => sum + r.events, 0));
    const second = startService('openmeter-forwarder', s.env);
    await produced;
    await waitFor(
      `${events.length} accepted events`,
      () => s.fake.events.length >= events.length,
      60_000,
      200,
    );
    expect(s.fake.events.map((e) => e.id).sort()).toEqual(events.map((e) => e.id).sort());
    // The dedupe is off: the batch in flight at the kill was never acknowledged, so nothing arrived twice.
    expect(acceptedTwice(s.fake)).toEqual([]);
    expectNoTokenInLogs(first, second);
  });

  it('posts no event twice through a second replica joining mid-stream and graceful restarts (dedupe off)', async () => {
    // Batches wait long enough that each rebalance finds records collected and not yet posted.
    const s = await scenario({ BATCH_MAX_EVENTS: '200', BATCH_MAX_WAIT_MS: '1500' });
    const serde = await usageSerde(s.topic);
    const events = makeUsageEvents(2400, 8);
    const produced = (async () => {
      for (let i = 0; i < events.length; i += 80) {
        await produceUsageEvents(s.topic, events.slice(i, i + 80), { serde });
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    const a = startService('openmeter-forwarder', s.env);
    await waitFor('first deliveries', () => s.fake.events.length > 0, 60_000, 50);
    const b = startService('openmeter-forwarder', s.env);
    await b.waitForLog(/openmeter-forwarder started/);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await a.kill('SIGTERM'); // graceful: its partitions move to b
    const a2 = startService('openmeter-forwarder', s.env);
    await a2.waitForLog(/openmeter-forwarder started/);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await b.kill('SIGTERM');
    await produced;
    await waitFor(
      `${events.length} events`,
      () => new Set(s.fake.events.map((e) => e.id)).size >= events.length,
      90_000,
      200,
    );
    expect(new Set(s.fake.events.map((e) => e.id))).toEqual(new Set(events.map((e) => e.id)));
    expect(acceptedTwice(s.fake)).toEqual([]);
    expect(s.fake.events).toHaveLength(events.length);
    expectNoTokenInLogs(a, b, a2);
  });

  it('a new consumer group with the default configuration starts at the end: no history re-posted', async () => {
    const s = await scenario();
    const serde = await usageSerde(s.topic);
    const history = makeUsageEvents(300, 9);
    await produceUsageEvents(s.topic, history, { serde });
    const first = startService('openmeter-forwarder', s.env);
    await waitFor('history delivered', () => s.fake.events.length >= history.length, 60_000, 100);
    await first.kill('SIGTERM');
    // A new group id (or offsets expired after the retention), default CONSUME_FROM_BEGINNING.
    const { CONSUME_FROM_BEGINNING: _backfill, ...defaults } = s.env;
    const opsPort = await freePort();
    startService('openmeter-forwarder', {
      ...defaults,
      OPS_PORT: String(opsPort),
      CONSUMER_GROUP_ID: uniqueName('fresh'),
    });
    // Ready = the group assigned its partitions (GROUP_JOIN), not merely "started": beside two CPU hogs
    // the join came seconds after the start log, the end-of-topic position was taken after the fresh
    // events were produced, and they were (rightly) never read. The first fetch follows the join at once
    // and takes the end of the topic as its position; 1.5 s covers that step.
    await waitFor(
      '/readyz 200',
      async () => (await readyz(opsPort).catch(() => ({ status: 0 }))).status === 200,
      60_000,
      100,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const fresh = makeUsageEvents(40, 10);
    await produceUsageEvents(s.topic, fresh, { serde });
    await waitFor(
      'new events delivered',
      () => s.fake.events.length >= history.length + fresh.length,
      60_000,
      100,
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(acceptedTwice(s.fake)).toEqual([]);
    expect(s.fake.events.map((e) => e.id).sort()).toEqual([...history, ...fresh].map((e) => e.id).sort());
  });

  it('an OpenMeter answering 400 to everything is an outage: nothing dead-lettered, not ready, all delivered after', async () => {
    const opsPort = await freePort();
    const s = await scenario({ OPS_PORT: String(opsPort), BATCH_MAX_EVENTS: '100', RETRY_MAX_MS: '500' });
    const events = makeUsageEvents(500, 11);
    const bad = { ...events[123]!, subject: '' }; // one genuinely bad event among them
    events[123] = bad;
    s.fake.failAll({ kind: 'status', status: 400 });
    const serde = await usageSerde(s.topic);
    await produceUsageEvents(s.topic, events, { serde });
    const forwarder = startService('openmeter-forwarder', s.env);
    await waitFor(
      '/readyz naming the rejections',
      async () => {
        const { status, body } = await readyz(opsPort).catch(() => ({ status: 0, body: {} }));
        return status === 503 && JSON.stringify(body).includes('rejected');
      },
      60_000,
      200,
    );
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(await readTopic(s.deadLetters, { idleMs: 1_000 })).toEqual([]);
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    expect(metrics).toMatch(/gpumeter_forwarder_breaker_open 1/);
    s.fake.clearFaults();
    const valid = events.filter((e) => e !== bad);
    await waitFor(`${valid.length} delivered`, () => s.fake.events.length >= valid.length, 60_000, 200);
    await waitFor('/readyz 200', async () => (await readyz(opsPort)).status === 200, 30_000, 200);
    const dead = await readTopic(s.deadLetters, { count: 1, timeoutMs: 30_000 });
    expect(dead.map((r) => r.message.value)).toEqual([serde.encode(bad)]);
    expect(s.fake.events.map((e) => e.id).sort()).toEqual(valid.map((e) => e.id).sort());
    expect(acceptedTwice(s.fake)).toEqual([]);
    expect(forwarder.output.some((l) => /breaker open/.test(l))).toBe(true);
  });

  it('keeps retrying a wrong token (401) without dropping or logging it', async () => {
    const s = await scenario({ OPENMETER_TOKEN: 'wrong-token-77f1e0c3' });
    const events = makeUsageEvents(20, 7);
    await produceUsageEvents(s.topic, events);
    const forwarder = startService('openmeter-forwarder', s.env);
    await forwarder.waitForLog(/refused the token/, 30_000);
    expect(s.fake.events).toEqual([]);
    expect(forwarder.output.filter((line) => line.includes('wrong-token-77f1e0c3'))).toEqual([]);
    expect(forwarder.running).toBe(true);
  });
});
