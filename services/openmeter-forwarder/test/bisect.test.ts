import { describe, expect, it } from 'vitest';
import { deliverBisecting, splitRange } from '../src/bisect.js';
import { DeliveryRetryError, type PostOutcome } from '../src/outcome.js';

/** An endpoint that refuses any request containing a bad item, recording what it accepted. */
function endpoint(bad: Set<number>) {
  const accepted: number[] = [];
  const requests: number[][] = [];
  const send = async (items: readonly number[]): Promise<PostOutcome> => {
    requests.push([...items]);
    const firstBad = items.find((item) => bad.has(item));
    if (firstBad !== undefined) return { kind: 'rejected', status: 400, body: `bad ${firstBad}` };
    accepted.push(...items);
    return { kind: 'delivered', status: 204 };
  };
  return { send, accepted, requests };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('splitRange', () => {
  it('splits into two halves covering the range, and never splits a single item', () => {
    expect(splitRange(0, 5)).toEqual([
      [0, 3],
      [3, 5],
    ]);
    expect(splitRange(4, 6)).toEqual([
      [4, 5],
      [5, 6],
    ]);
    expect(splitRange(2, 3)).toEqual([]);
  });
});

describe('deliverBisecting', () => {
  it('sends a good batch in one request', async () => {
    const fake = endpoint(new Set());
    expect(await deliverBisecting(range(10), fake.send)).toEqual([]);
    expect(fake.requests).toHaveLength(1);
    expect(fake.accepted).toEqual(range(10));
  });

  it('finds one bad event in a batch of 100 in O(log n) requests and delivers all the others', async () => {
    const fake = endpoint(new Set([37]));
    const rejected = await deliverBisecting(range(100), fake.send);
    expect(rejected).toEqual([{ item: 37, status: 400, body: 'bad 37' }]);
    expect(fake.accepted.sort((a, b) => a - b)).toEqual(range(100).filter((i) => i !== 37));
    expect(fake.requests.length).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(100)));
  });

  it('finds several bad events, including the first and last', async () => {
    const bad = new Set([0, 13, 14, 63]);
    const fake = endpoint(bad);
    const rejected = await deliverBisecting(range(64), fake.send);
    expect(rejected.map((r) => r.item).sort((a, b) => a - b)).toEqual([...bad]);
    expect(fake.accepted.length).toBe(60);
  });

  it('dead-letters a lone bad event', async () => {
    const rejected = await deliverBisecting([5], endpoint(new Set([5])).send);
    expect(rejected.map((r) => r.item)).toEqual([5]);
  });

  it('stops at the first request that must be retried, with its Retry-After', async () => {
    let calls = 0;
    const send = async (): Promise<PostOutcome> => {
      calls++;
      return calls === 1
        ? { kind: 'rejected', status: 400, body: '' }
        : { kind: 'retry', status: 429, reason: 'HTTP 429', retryAfterMs: 1500 };
    };
    const error = await deliverBisecting(range(8), send).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeliveryRetryError);
    expect((error as DeliveryRetryError).retryAfterMs).toBe(1500);
    expect(calls).toBe(2);
  });

  it('sends nothing for an empty batch', async () => {
    const fake = endpoint(new Set());
    expect(await deliverBisecting([], fake.send)).toEqual([]);
    expect(fake.requests).toHaveLength(0);
  });
});
