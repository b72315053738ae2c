import { afterEach, describe, expect, it } from 'vitest';
import { usageEventFixture } from '../../../test/support/fixtures.js';
import { FakeOpenMeter } from '../../../test/support/fake-openmeter.js';
import { toCloudEvent } from '../src/cloudevent.js';
import { OpenMeterClient } from '../src/openmeter-client.js';

const TOKEN = 'om_test_token_5b1e';
const events = [0, 1, 2].map((i) =>
  toCloudEvent(usageEventFixture({ id: `e${i}` }), { type: 'gpu-usage', subjectMap: {} }),
);

let fake: FakeOpenMeter;
afterEach(() => fake?.stop());

async function setup(timeoutMs = 2_000) {
  fake = new FakeOpenMeter({ token: TOKEN });
  const url = await fake.start();
  return new OpenMeterClient({ url: `${url}/`, token: TOKEN, timeoutMs, retryAfterMaxMs: 60_000 });
}

describe('OpenMeterClient against the fake endpoint', () => {
  it('delivers a batch with the batch content type and the bearer token', async () => {
    const client = await setup();
    expect(await client.post(events)).toEqual({ kind: 'delivered', status: 204 });
    expect(fake.events.map((e) => e.id)).toEqual(['e0', 'e1', 'e2']);
    expect(fake.requests[0]!.contentType).toBe('application/cloudevents-batch+json');
  });

  it('turns 429 into a retry with the Retry-After, and 500 into a retry', async () => {
    const client = await setup();
    fake.failNext({ kind: 'status', status: 429, retryAfterSeconds: 2 }, { kind: 'status', status: 500 });
    expect(await client.post(events)).toMatchObject({ kind: 'retry', status: 429, retryAfterMs: 2_000 });
    expect(await client.post(events)).toMatchObject({ kind: 'retry', status: 500 });
  });

  it('turns a hung request into a retry after its timeout', async () => {
    const client = await setup(150);
    fake.failNext({ kind: 'hang' });
    expect(await client.post(events)).toEqual({ kind: 'retry', reason: 'no answer in 150 ms' });
  });

  it('turns a refused connection into a retry', async () => {
    const client = await setup();
    await fake.stop();
    expect(await client.post(events)).toMatchObject({ kind: 'retry' });
  });

  it('hands a 400 body back for the dead letter', async () => {
    const client = await setup();
    const outcome = await client.post([{ ...events[0]!, subject: '' }]);
    expect(outcome).toMatchObject({ kind: 'rejected', status: 400 });
    expect(outcome.kind === 'rejected' && outcome.body).toContain('subject is required');
  });

  it('never puts the token in an outcome, whatever happens', async () => {
    const client = await setup(150);
    fake.failNext({ kind: 'status', status: 500 }, { kind: 'hang' }, { kind: 'status', status: 400 });
    const outcomes = [await client.post(events), await client.post(events), await client.post(events)];
    await fake.stop();
    outcomes.push(await client.post(events));
    expect(JSON.stringify(outcomes)).not.toContain(TOKEN);
  });
});
