import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { waitWhileHeartbeating } from '@gpu-meter/kit/runtime';

/**
 * Issue 13 point 7: a consumer that waits on back-pressure (a transaction commit in flight, a busy worker)
 * inside eachBatch must go on heartbeating, or a slow broker gets it evicted at the session timeout.
 */
const settlesAfter = <T>(ms: number, value: T) =>
  new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe('waitWhileHeartbeating', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('heartbeats every interval while the wait lasts, then answers what it waited for', async () => {
    let beats = 0;
    let answer: string | undefined;
    void waitWhileHeartbeating(settlesAfter(10_000, 'committed'), async () => void (beats += 1), 1_000).then(
      (value) => (answer = value),
    );
    await vi.advanceTimersByTimeAsync(9_500);
    // One per second so far, the wait still on: a session timeout of a few seconds is never reached.
    expect(beats).toBe(9);
    expect(answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(500);
    expect(answer).toBe('committed');
    const atEnd = beats;
    expect(atEnd).toBeGreaterThanOrEqual(9);
    expect(atEnd).toBeLessThanOrEqual(10);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(beats).toBe(atEnd);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends the wait with the error of a heartbeat that finds the group rebalancing', async () => {
    const rebalancing = Object.assign(new Error('The group is rebalancing'), {
      type: 'REBALANCE_IN_PROGRESS',
    });
    let beats = 0;
    const heartbeat = async () => {
      beats += 1;
      if (beats === 3) throw rebalancing;
    };
    let outcome: unknown;
    void waitWhileHeartbeating(new Promise<void>(() => {}), heartbeat, 1_000).then(
      () => (outcome = 'resolved'),
      (error: unknown) => (outcome = error),
    );
    await vi.advanceTimersByTimeAsync(3_000);
    // kafkajs expects it out of eachBatch to rejoin; the commit awaited goes on by itself.
    expect(outcome).toBe(rebalancing);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(beats).toBe(3);
  });

  it('passes on the error of what it waited for, and does not heartbeat for a wait that is already over', async () => {
    const beats: number[] = [];
    const failed = new Error('commit failed');
    const outcome = waitWhileHeartbeating(
      new Promise((_, reject) => setTimeout(() => reject(failed), 2_500)),
      async () => void beats.push(Date.now()),
      1_000,
    ).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(2_500);
    expect(await outcome).toBe(failed);
    expect(beats).toHaveLength(2);
    beats.length = 0;
    expect(await waitWhileHeartbeating(Promise.resolve(7), async () => void beats.push(0), 1_000)).toBe(7);
    expect(beats).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
