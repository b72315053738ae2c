import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stubbedService } from './stub-service.js';
import type { TaskTable } from '../src/task-table.js';

/**
 * Issue 13 (a loaded machine): ticks, batches and rebalances take turns (`exclusive`), and a batch waiting
 * for its turn cannot heartbeat. On a loaded machine an idle tick (the raw topics' end offsets, then the
 * worker) can take longer than TICK_MS; queued once per TICK_MS whatever the backlog, the ticks pile up and
 * a batch waits behind them until the member is evicted at the session timeout (a beside-hogs run was
 * evicted and billed nothing for two minutes, which this fits). A service with task 0 restored (its private
 * state set directly), a broker that answers end offsets after 2.5 s and a worker that answers at once.
 */
const TICK_MS = 1_000;
const END_OFFSETS_MS = 2_500; // two raw topics: one tick takes 5 s

interface Internals {
  taskTable: TaskTable;
  tick(): void;
  exclusive<T>(work: () => Promise<T>): Promise<T>;
}

function service(): { aggregator: Internals; endOffsetCalls: () => number } {
  let calls = 0;
  const admin = {
    fetchTopicOffsets: async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, END_OFFSETS_MS));
      return [{ partition: 0, offset: '0', high: '0', low: '0' }];
    },
  };
  const aggregator = stubbedService({
    config: { tickMs: TICK_MS, sessionTimeoutMs: 30_000 },
    admin,
    driver: { call: async () => ({ step: { events: [], commits: [] } }) },
    metrics: { partitions: { set: () => {} } },
  }) as unknown as Internals;
  aggregator.taskTable.reassign([0]);
  aggregator.taskTable.beginRestore(0, 0);
  aggregator.taskTable.restored(0);
  return { aggregator, endOffsetCalls: () => calls };
}

describe('AggregatorService idle ticks slower than TICK_MS', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('are not queued behind one another: a batch waits for one tick at most, not for a backlog', async () => {
    const { aggregator, endOffsetCalls } = service();
    // 20 s of the ticker firing every TICK_MS while each tick takes 5 s.
    for (let elapsed = 0; elapsed < 20_000; elapsed += TICK_MS) {
      aggregator.tick();
      await vi.advanceTimersByTimeAsync(TICK_MS);
    }
    let batchRanAfterMs: number | undefined;
    const queuedAt = Date.now();
    void aggregator.exclusive(async () => void (batchRanAfterMs = Date.now() - queuedAt));
    await vi.advanceTimersByTimeAsync(120_000);
    // The tick in progress (up to 5 s) and, at most, the one the ticker queued meanwhile.
    expect(batchRanAfterMs).toBeLessThanOrEqual(2 * 2 * END_OFFSETS_MS);
    // Each tick still asked for both topics' end offsets: 4 ticks in 20 s, and no more after the batch.
    expect(endOffsetCalls()).toBeLessThanOrEqual(2 * (20_000 / (2 * END_OFFSETS_MS) + 2));
  });
});
