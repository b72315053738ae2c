import type { EachBatchPayload } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Step } from '../src/driver.js';
import type { TaskTable } from '../src/task-table.js';
import { stubbedService } from './stub-service.js';

/**
 * The task table in the Kafka shell: a task whose transaction is fenced by a newer owner of its
 * transactional id (this instance was paused past the session timeout; the `zombie` fault trial does it
 * with SIGSTOP) must not be restored here by its next batches or ticks, which would fence the new owner
 * in turn, until a rebalance or 2 × SESSION_TIMEOUT_MS. A plain failure restores at once. One task, a
 * producer whose commits fail as told, and a driver that records what it is asked.
 */
const SESSION_TIMEOUT_MS = 10_000;

interface Internals {
  taskTable: TaskTable;
  onBatch(payload: EachBatchPayload): Promise<void>;
  onTick(): Promise<void>;
  reassign(partitions: number[], assignment: Map<string, number[]>): Promise<void>;
  enqueue(p: number, step: Step, batch: [], records: number): void;
  exclusive<T>(work: () => Promise<T>): Promise<T>;
}

const producerFenced = Object.assign(new Error('Producer attempted an operation with an old epoch'), {
  type: 'INVALID_PRODUCER_EPOCH',
  code: 47,
});
const brokerDown = new Error('Connection error: connect ECONNREFUSED 127.0.0.1:19092');

function service(commitError: Error) {
  const calls: string[] = [];
  const transaction = {
    send: async () => undefined,
    sendOffsets: async () => undefined,
    commit: async () => {
      throw commitError;
    },
    abort: async () => undefined,
  };
  const kafka = {
    producer: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      transaction: async () => transaction,
    }),
  };
  const aggregator = stubbedService({
    config: { sessionTimeoutMs: SESSION_TIMEOUT_MS, consumerGroupId: 'g', transactionalIdPrefix: 't' },
    kafka,
    admin: { fetchOffsets: async () => [], fetchTopicOffsets: async () => [] },
    driver: {
      call: async (request: { op: string }) => {
        calls.push(request.op);
        return { step: emptyStep() };
      },
    },
    metrics: { transactions: { inc: () => {} }, partitions: { set: () => {} } },
  }) as unknown as Internals;
  Object.assign(aggregator, { consumer: { seek: () => {} } }); // a restore seeks the task's partitions
  return { aggregator, restores: () => calls.filter((op) => op === 'assign').length };
}

function emptyStep(): Step {
  return { events: [], late: [], deadLetters: [], commits: [], dedupeHits: 0, replayed: 0 };
}

function payload(): EachBatchPayload {
  const message = { offset: '0', timestamp: '0', key: null, value: Buffer.from('x'), headers: {} };
  return {
    batch: { topic: 'pods', partition: 0, highWatermark: '1', messages: [message], lastOffset: () => '0' },
    isStale: () => false,
    resolveOffset: () => {},
    heartbeat: async () => {},
  } as unknown as EachBatchPayload;
}

/** Task 0 assigned and restored, then one transaction that fails with `error`. */
async function failOneTransaction(error: Error) {
  const { aggregator, restores } = service(error);
  await aggregator.reassign([0], new Map([['pods', [0]]]));
  expect(aggregator.taskTable.stateOf(0)).toBe('running');
  aggregator.enqueue(0, emptyStep(), [], 0);
  await vi.advanceTimersByTimeAsync(0);
  return { aggregator, restores };
}

describe('AggregatorService: a fenced task', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('is held: its batches and ticks do not restore it until 2 × SESSION_TIMEOUT_MS have passed', async () => {
    const { aggregator, restores } = await failOneTransaction(producerFenced);
    expect(aggregator.taskTable.stateOf(0)).toBe('fenced');
    expect(restores()).toBe(1); // the assignment's restore only
    await aggregator.exclusive(() => aggregator.onBatch(payload()));
    await aggregator.exclusive(() => aggregator.onTick());
    await vi.advanceTimersByTimeAsync(2 * SESSION_TIMEOUT_MS - 1_000);
    await aggregator.exclusive(() => aggregator.onTick());
    expect(restores()).toBe(1);
    expect(aggregator.taskTable.stateOf(0)).toBe('fenced');
    await vi.advanceTimersByTimeAsync(2_000);
    await aggregator.exclusive(() => aggregator.onTick());
    expect(restores()).toBe(2);
    expect(aggregator.taskTable.stateOf(0)).toBe('running');
  });

  it('is restored at once by a rebalance, which gives it to this instance again', async () => {
    const { aggregator, restores } = await failOneTransaction(producerFenced);
    await aggregator.exclusive(() => aggregator.reassign([0], new Map([['pods', [0]]])));
    expect(restores()).toBe(2);
    expect(aggregator.taskTable.stateOf(0)).toBe('running');
  });

  it('unlike a task whose transaction failed otherwise (the broker down): that one is restored at once', async () => {
    const { aggregator, restores } = await failOneTransaction(brokerDown);
    await aggregator.exclusive(async () => undefined); // the restore fail() queued
    expect(restores()).toBe(2);
    expect(aggregator.taskTable.stateOf(0)).toBe('running');
  });
});
