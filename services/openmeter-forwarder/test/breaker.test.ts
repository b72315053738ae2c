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

describe('RejectionBreaker', () => {
  it('dead-letters a single bad event once OpenMeter took others of its batch; holds it alone', () => {
    const breaker = new RejectionBreaker(options);
    expect(breaker.judge(1, 500, 499, 400)).toEqual({ hold: false, changed: false });
    expect(breaker.judge(1, 2, 1, 400)).toEqual({ hold: false, changed: false });
    // Alone in its batch nothing proves OpenMeter takes events: held (and retried with what comes next).
    expect(breaker.judge(1, 1, 0, 400)).toEqual({ hold: true, changed: false });
    expect(breaker.judge(1, 5, 4, 400)).toEqual({ hold: false, changed: false });
    expect(breaker.open).toBe(false);
  });

  it('opens when most of a batch is rejected, says why, and closes on the next batch that goes through', () => {
    const breaker = new RejectionBreaker(options);
    expect(breaker.judge(60, 100, 40, 400)).toEqual({ hold: true, changed: true });
    expect(breaker.reason).toMatch(/rejected 60 of 100 events.*\(HTTP 400\).*outage/);
    expect(breaker.judge(100, 100, 0, 400)).toEqual({ hold: true, changed: false });
    expect(breaker.judge(0, 100, 100, undefined)).toEqual({ hold: false, changed: true });
    expect(breaker.reason).toBeUndefined();
  });

  it('holds small batches nothing of which was accepted, and opens after the consecutive threshold', () => {
    const breaker = new RejectionBreaker(options);
    expect(breaker.judge(1, 1, 0, 400)).toEqual({ hold: true, changed: false });
    expect(breaker.judge(2, 2, 0, 400)).toEqual({ hold: true, changed: false });
    expect(breaker.judge(3, 3, 0, 400)).toEqual({ hold: true, changed: true });
    expect(breaker.reason).toMatch(/3 batches in a row/);
  });
});

describe('deliverBisecting with the breaker', () => {
  it('stops bisecting a batch that is all rejected once the breaker can judge it', async () => {
    const breaker = new RejectionBreaker(options);
    const fake = endpoint(() => true);
    const rejected = await deliverBisecting(range(100), fake.send, {
      stopWhen: (count) => breaker.exceeded(count, 100),
    });
    expect(rejected).toHaveLength(51);
    expect(breaker.judge(rejected.length, 100, 0, 400).hold).toBe(true);
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
