import type { EachBatchPayload } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stubbedService } from './stub-service.js';
import { Outbox } from '../src/outbox.js';
import type { TaskTable } from '../src/task-table.js';

/**
 * Issue 13 point 7: while onBatch waits on back-pressure (its task's transaction commit held by a slow
 * broker, or the worker full), the member must keep heartbeating, else it is evicted at the session
 * timeout. A service with task 0 restored (its private state set directly), a worker that never answers,
 * and one batch: only what onBatch does with the payload's heartbeat is looked at.
 */
const SESSION_TIMEOUT_MS = 3_000; // heartbeat interval: a third of it

interface Internals {
  taskTable: TaskTable;
  lanes: Map<
    number,
    {
      producer: unknown;
      outbox: Outbox;
      committing: Promise<void> | undefined;
      latestCommits: string;
      generation: number;
    }
  >;
  inWorker: Set<Promise<void>>;
  onBatch(payload: EachBatchPayload): Promise<void>;
}

function service(): Internals {
  const aggregator = stubbedService({
    config: { sessionTimeoutMs: SESSION_TIMEOUT_MS },
    driver: { call: () => new Promise(() => {}) },
  }) as unknown as Internals;
  aggregator.taskTable.reassign([0]);
  aggregator.taskTable.beginRestore(0, 0);
  aggregator.taskTable.restored(0);
  return aggregator;
}

/** A task's lane with nothing to commit and no transaction in flight. */
function idleLane(producer: unknown) {
  return { producer, outbox: new Outbox(), committing: undefined, latestCommits: '', generation: 0 };
}

function payload(heartbeat: () => Promise<void>): EachBatchPayload {
  const message = { offset: '0', timestamp: '0', key: null, value: Buffer.from('x'), headers: {} };
  return {
    batch: { topic: 'pods', partition: 0, highWatermark: '1', messages: [message], lastOffset: () => '0' },
    isStale: () => false,
    resolveOffset: () => {},
    heartbeat,
  } as unknown as EachBatchPayload;
}

describe('AggregatorService.onBatch under back-pressure', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  async function beatsWhileWaiting(aggregator: Internals, release: () => void) {
    let beats = 0;
    let returned = false;
    void aggregator.onBatch(payload(async () => void (beats += 1))).then(() => (returned = true));
    await vi.advanceTimersByTimeAsync(10_000);
    const during = { beats, returned };
    release();
    await vi.advanceTimersByTimeAsync(0);
    return { during, returned };
  }

  it('heartbeats while its task waits for the commit in flight', async () => {
    const aggregator = service();
    let commit!: () => void;
    const outbox = new Outbox();
    outbox.records = 50_000; // the bound: the task takes no more until the commit lands
    aggregator.lanes.set(0, {
      producer: {},
      outbox,
      committing: new Promise<void>((resolve) => (commit = resolve)),
      latestCommits: '',
      generation: 1,
    });
    const { during, returned } = await beatsWhileWaiting(aggregator, () => commit());
    expect(during.returned).toBe(false);
    // One a second (the interval) for 10 s; before, none until the commit landed.
    expect(during.beats).toBeGreaterThanOrEqual(9);
    expect(returned).toBe(true);
  });

  it('heartbeats while it restores its task and InitProducerId waits for the previous owner', async () => {
    const aggregator = service();
    aggregator.taskTable.reassign([0]); // pending: the task is restored on its first batch
    let fenced!: (transaction: { abort: () => Promise<void> }) => void;
    // The coordinator answers InitProducerId only once the killed owner's open transaction has ended.
    const producer = { transaction: () => new Promise((resolve) => (fenced = resolve)) };
    aggregator.lanes.set(0, idleLane(producer));
    let beats = 0;
    let settled = false;
    const batch = aggregator.onBatch(payload(async () => void (beats += 1))).finally(() => (settled = true));
    batch.catch(() => undefined); // the stand-in admin cannot read offsets: the restore then fails
    await vi.advanceTimersByTimeAsync(10_000);
    expect(settled).toBe(false);
    // One a second (the interval) for 10 s; before, none until InitProducerId answered.
    expect(beats).toBeGreaterThanOrEqual(9);
    fenced({ abort: async () => undefined });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(true);
  });

  it('a rebalance reported while it restores its task ends the batch only once the restore has ended', async () => {
    const aggregator = service();
    aggregator.taskTable.reassign([0]);
    let fenced!: (transaction: { abort: () => Promise<void> }) => void;
    const producer = { transaction: () => new Promise((resolve) => (fenced = resolve)) };
    aggregator.lanes.set(0, idleLane(producer));
    let settled = false;
    const rebalancing = Object.assign(new Error('The group is rebalancing'), {
      type: 'REBALANCE_IN_PROGRESS',
    });
    const batch = aggregator
      .onBatch(
        payload(async () => {
          throw rebalancing;
        }),
      )
      .finally(() => (settled = true));
    batch.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(5_000);
    // Still inside its exclusive section: a restore must not run beside the next rebalance's.
    expect(settled).toBe(false);
    fenced({ abort: async () => undefined });
    await vi.advanceTimersByTimeAsync(0);
    await expect(batch).rejects.toBe(rebalancing);
  });

  it('heartbeats while the worker holds its maximum of batches', async () => {
    const aggregator = service();
    aggregator.lanes.set(0, idleLane({}));
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    for (let i = 0; i < 3; i += 1) aggregator.inWorker.add(i === 0 ? answered : new Promise(() => {}));
    const { during, returned } = await beatsWhileWaiting(aggregator, () => answer());
    expect(during.returned).toBe(false);
    expect(during.beats).toBeGreaterThanOrEqual(9);
    expect(returned).toBe(true);
  });
});
