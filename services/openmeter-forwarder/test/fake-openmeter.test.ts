import { afterEach, describe, expect, it } from 'vitest';
import { FakeOpenMeter } from '../../../test/support/fake-openmeter.js';

const BATCH = 'application/cloudevents-batch+json';
const SINGLE = 'application/cloudevents+json';

function event(id: string, overrides: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id,
    source: 's',
    type: 'gpu-usage',
    subject: 'acme',
    time: '2026-01-01T00:00:00Z',
    data: { v: 1 },
    ...overrides,
  };
}

let fake: FakeOpenMeter;
afterEach(() => fake?.stop());

async function post(url: string, body: unknown, contentType = BATCH, token?: string) {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  return fetch(`${url}/api/v1/events`, { method: 'POST', headers, body: JSON.stringify(body) });
}

describe('fake OpenMeter ingest endpoint', () => {
  it('accepts a batch and a single event with 204 and records them', async () => {
    fake = new FakeOpenMeter();
    const url = await fake.start();
    expect((await post(url, [event('1'), event('2')])).status).toBe(204);
    expect((await post(url, event('3'), SINGLE)).status).toBe(204);
    expect(fake.events.map((e) => e.id)).toEqual(['1', '2', '3']);
  });

  it('dedupes nothing by default, as a self-hosted OpenMeter ships: a resend is billed again', async () => {
    fake = new FakeOpenMeter();
    const url = await fake.start();
    await post(url, [event('1')]);
    expect((await post(url, [event('1'), event('2')])).status).toBe(204);
    expect(fake.events.map((e) => e.id)).toEqual(['1', '1', '2']);
    expect(fake.acceptedCounts().get('s/1')).toBe(2);
    expect(fake.duplicateArrivals()).toBe(1);
  });

  it('lru:N remembers the last N (source, id) keys: an older resend is billed again', async () => {
    fake = new FakeOpenMeter({ dedupe: 'lru:2' });
    const url = await fake.start();
    await post(url, [event('1'), event('1', { source: 'other' }), event('2')]);
    await post(url, [event('2'), event('1', { source: 'other' })]); // both still in the last 2
    await post(url, [event('1')]); // evicted by 'other/1' and '2'
    expect(fake.events.map((e) => `${String(e.source)}/${String(e.id)}`)).toEqual([
      's/1',
      'other/1',
      's/2',
      's/1',
    ]);
    // The raw requests show every arrival, whatever the dedupe hid.
    expect(fake.duplicateArrivals()).toBe(3);
  });

  it('ttl:MS forgets a key MS after its first arrival', async () => {
    fake = new FakeOpenMeter({ dedupe: 'ttl:300' });
    const url = await fake.start();
    await post(url, [event('1')]);
    await post(url, [event('1')]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await post(url, [event('1')]);
    expect(fake.events.map((e) => e.id)).toEqual(['1', '1']);
    expect(fake.acceptedCounts().get('s/1')).toBe(3);
  });

  it('records refused requests raw, with the events they carried, but counts only accepted ones', async () => {
    fake = new FakeOpenMeter();
    const url = await fake.start();
    fake.failNext({ kind: 'status', status: 400 });
    expect((await post(url, [event('1'), event('2')])).status).toBe(400);
    expect((await post(url, [event('1'), event('2')])).status).toBe(204);
    expect(fake.rawRequests.map((r) => [r.status, r.body.map((e) => e.id)])).toEqual([
      [400, ['1', '2']],
      [204, ['1', '2']],
    ]);
    expect(fake.duplicateArrivals()).toBe(0);
  });

  it('rejects an unknown dedupe mode', () => {
    fake = new FakeOpenMeter();
    expect(() => fake.setDedupe('lru:x' as never)).toThrow(/off, lru:N or ttl:MS/);
  });

  it.each([
    ['id', { id: '' }],
    ['source', { source: undefined }],
    ['type', { type: 7 }],
    ['subject', { subject: '' }],
    ['specversion', { specversion: '0.3' }],
    ['data', { data: [1, 2] }],
  ])(
    'refuses a batch with a bad %s: 400 problem+json naming the event, nothing recorded',
    async (field, overrides) => {
      fake = new FakeOpenMeter();
      const url = await fake.start();
      const response = await post(url, [event('ok'), event('bad', overrides)]);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      const body = (await response.json()) as { detail: string };
      expect(body.detail).toContain('index 1');
      expect(body.detail).toContain(field);
      expect(fake.events).toEqual([]);
    },
  );

  it('refuses a non-array batch and an unknown content type', async () => {
    fake = new FakeOpenMeter();
    const url = await fake.start();
    expect((await post(url, event('1'))).status).toBe(400);
    expect((await post(url, [event('1')], 'application/json')).status).toBe(415);
  });

  it('requires the bearer token when configured', async () => {
    fake = new FakeOpenMeter({ token: 'sekret' });
    const url = await fake.start();
    expect((await post(url, [event('1')])).status).toBe(401);
    expect((await post(url, [event('1')], BATCH, 'wrong')).status).toBe(401);
    expect((await post(url, [event('1')], BATCH, 'sekret')).status).toBe(204);
  });

  it('plays scripted faults in order, then serves normally', async () => {
    fake = new FakeOpenMeter();
    const url = await fake.start();
    fake.failNext(
      { kind: 'pass' },
      { kind: 'status', status: 429, retryAfterSeconds: 3 },
      { kind: 'status', status: 500 },
      { kind: 'status', status: 400 },
    );
    expect((await post(url, [event('0')])).status).toBe(204);
    const first = await post(url, [event('1')]);
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('3');
    expect((await post(url, [event('1')])).status).toBe(500);
    expect((await post(url, [event('1')])).status).toBe(400);
    expect(fake.events.map((e) => e.id)).toEqual(['0']);
    expect((await post(url, [event('1')])).status).toBe(204);
    expect(fake.requests.map((r) => r.status)).toEqual([204, 429, 500, 400, 204]);
  });

  it('hangs a request until the client gives up', async () => {
    fake = new FakeOpenMeter();
    const url = await fake.start();
    fake.failNext({ kind: 'hang' });
    const error = await fetch(`${url}/api/v1/events`, {
      method: 'POST',
      headers: { 'content-type': BATCH },
      body: JSON.stringify([event('1')]),
      signal: AbortSignal.timeout(200),
    }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('TimeoutError');
    expect(fake.events).toEqual([]);
    expect((await post(url, [event('1')])).status).toBe(204);
  });
});
