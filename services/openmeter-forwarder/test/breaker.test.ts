import { describe, expect, it } from 'vitest';
import { deliverBisecting } from '../src/bisect.js';
import { RejectionBreaker } from '../src/breaker.js';
import type { PostOutcome } from '../src/outcome.js';

const options = { rejectPercent: 50, minEvents: 10, consecutiveBatches: 3 };
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** An endpoint rejecting (400) any request holding one of `bad`, or everything; it records every request. */
function endpoint(bad: (item: number) => boolean) {
  const requests: number[][] = [];
  return {
    requests,
    send: async (items: readonly number[]): Promise<PostOutcome> => {
      requests.push([...items]);
      return items.some(bad)
        ? { kind: 'rejected', status: 400, body: 'no' }
        : { kind: 'delivered', status: 204 };
    },
  };
}

/** A batch through the breaker as the forwarder sends it: bisected, judged, retried until not held. */
async function sendLikeTheForwarder(
  breaker: RejectionBreaker<{ n: number }>,
  items: Array<{ n: number }>,
  send: (part: ReadonlyArray<{ n: number }>) => Promise<PostOutcome>,
  maxAttempts = 10,
) {
  const delivered = new Set<{ n: number }>();
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const pending = items.filter((item) => !delivered.has(item));
    let unconfirmed = 0;
    const rejected = await deliverBisecting(pending, send, {
      onRejected: (item) => {
        if (!breaker.confirmRejection(item)) unconfirmed += 1;
      },
      onDelivered: (part) => {
        breaker.accepted();
        part.forEach((item) => delivered.add(item));
      },
      stopWhen: (count) => breaker.exceeded(count, pending.length),
    });
    if (!breaker.judge(rejected.length, pending.length, unconfirmed, 400).hold) {
      return { attempts: attempt, delivered: [...delivered], deadLettered: rejected.map((r) => r.item) };
    }
  }
  return { attempts: maxAttempts, delivered: [...delivered], deadLettered: [] };
}

const objects = (n: number) => Array.from({ length: n }, (_, i) => ({ n: i }));

describe('RejectionBreaker', () => {
  it('dead-letters a bad event once it is rejected again after OpenMeter accepted others', async () => {
    const breaker = new RejectionBreaker<{ n: number }>(options);
    const items = objects(100);
    const fake = endpoint(() => false);
    const send = (part: ReadonlyArray<{ n: number }>) =>
      part.some((item) => item.n === 0)
        ? Promise.resolve<PostOutcome>({ kind: 'rejected', status: 400, body: 'bad' })
        : fake.send(part.map((item) => item.n));
    const result = await sendLikeTheForwarder(breaker, items, send);
    expect(result.deadLettered).toEqual([items[0]]);
    expect(result.delivered).toHaveLength(99);
    expect(result.attempts).toBe(2); // rejected first before any acceptance, confirmed on the retry
    expect(breaker.open).toBe(false);
  });

  it('a storm ending in the middle of a bisection dead-letters none of the events it rejected', async () => {
    const breaker = new RejectionBreaker<{ n: number }>(options);
    const items = objects(100);
    let requests = 0;
    // 400 to everything for the first 30 requests (the storm), then all accepted.
    const send = async (): Promise<PostOutcome> =>
      ++requests <= 30
        ? { kind: 'rejected', status: 400, body: 'proxy' }
        : { kind: 'delivered', status: 204 };
    const result = await sendLikeTheForwarder(breaker, items, send);
    expect(result.deadLettered).toEqual([]);
    expect(result.delivered).toHaveLength(100);
    expect(breaker.open).toBe(false);
  });

  it('a storm starting in the middle of a bisection holds the batch and opens after the threshold', async () => {
    const breaker = new RejectionBreaker<{ n: number }>(options);
    const items = objects(8); // a small batch: below minEvents, only the consecutive rule opens
    let requests = 0;
    // The first request is refused for the bad half, the second (the good half) accepted; then the storm.
    const send = async (): Promise<PostOutcome> =>
      ++requests === 2
        ? { kind: 'delivered', status: 204 }
        : { kind: 'rejected', status: 400, body: 'proxy' };
    const result = await sendLikeTheForwarder(breaker, items, send, 4);
    expect(result.deadLettered).toEqual([]);
    expect(breaker.open).toBe(true);
    expect(breaker.reason).toMatch(/attempts in a row.*outage/);
  });

  it('opens when most of a large batch is rejected, says why, and closes on the next batch that goes through', () => {
    const breaker = new RejectionBreaker<object>(options);
    expect(breaker.judge(60, 100, 0, 400)).toEqual({ hold: true, changed: true });
    expect(breaker.reason).toMatch(/rejected 60 of 100 events.*\(HTTP 400\).*outage/);
    expect(breaker.judge(100, 100, 0, 400)).toEqual({ hold: true, changed: false });
    expect(breaker.judge(0, 100, 0, undefined)).toEqual({ hold: false, changed: true });
    expect(breaker.reason).toBeUndefined();
  });
});

describe('deliverBisecting with the breaker', () => {
  it('stops bisecting a batch that is all rejected once the breaker can judge it', async () => {
    const breaker = new RejectionBreaker<object>(options);
    const fake = endpoint(() => true);
    const rejected = await deliverBisecting(range(100), fake.send, {
      stopWhen: (count) => breaker.exceeded(count, 100),
    });
    expect(rejected).toHaveLength(51);
    expect(breaker.judge(rejected.length, 100, 51, 400).hold).toBe(true);
    expect(breaker.open).toBe(true);
    // Far fewer than the 199 requests bisecting the whole batch would take.
    expect(fake.requests.length).toBeLessThan(150);
  });

  it('names the parts delivered, so a retry leaves them out', async () => {
    const fake = endpoint((item) => item === 3);
    const delivered: number[] = [];
    const rejected = await deliverBisecting(range(8), fake.send, {
      onDelivered: (part) => delivered.push(...part),
    });
    expect(rejected.map((r) => r.item)).toEqual([3]);
    expect(delivered.sort()).toEqual([0, 1, 2, 4, 5, 6, 7]);
  });
});
