import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, GridTicker } from '@gpu-meter/kit/runtime';

const logger = createLogger('test', 'silent');

describe('GridTicker', () => {
  afterEach(() => vi.useRealTimers());

  it('ticks on epoch-aligned grid points, delay after each, in order', async () => {
    vi.useFakeTimers({ now: 1_000_000_400 });
    const ticks: Array<[number, number, number]> = [];
    const ticker = new GridTicker(
      1_000,
      100,
      async (t, skipped) => void ticks.push([t, skipped, Date.now()]),
      logger,
    );
    ticker.start();
    await vi.advanceTimersByTimeAsync(2_800);
    await ticker.stop();
    expect(ticks).toEqual([
      [1_000_001_000, 0, 1_000_001_100],
      [1_000_002_000, 0, 1_000_002_100],
      [1_000_003_000, 0, 1_000_003_100],
    ]);
  });

  it('after a stall jumps to the latest due point and says how many it skipped', async () => {
    vi.useFakeTimers({ now: 10_050 });
    const ticks: Array<[number, number]> = [];
    let stall = true;
    const ticker = new GridTicker(
      1_000,
      100,
      async (t, skipped) => {
        ticks.push([t, skipped]);
        if (stall) {
          stall = false;
          vi.setSystemTime(Date.now() + 3_500);
        }
      },
      logger,
    );
    ticker.start(9_000);
    await vi.advanceTimersByTimeAsync(1_100);
    await ticker.stop();
    // At 13 600 the points 11 000 and 12 000 are long past: skip them, run 13 000 at once.
    expect(ticks.slice(0, 2)).toEqual([
      [10_000, 0],
      [13_000, 2],
    ]);
  });

  it('keeps ticking when a tick throws', async () => {
    vi.useFakeTimers({ now: 0 });
    let calls = 0;
    const ticker = new GridTicker(
      1_000,
      0,
      async () => {
        calls += 1;
        throw new Error('boom');
      },
      logger,
    );
    ticker.start();
    await vi.advanceTimersByTimeAsync(3_000);
    await ticker.stop();
    expect(calls).toBe(3);
  });

  it('rejects a delay that is not shorter than the interval', () => {
    expect(() => new GridTicker(1_000, 1_000, async () => {}, logger)).toThrow(RangeError);
  });
});
