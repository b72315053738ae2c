import { describe, expect, it } from 'vitest';
import { backoffCeiling, backoffDelay, RECONNECT_BACKOFF } from '@gpu-meter/kit/runtime';
import { BatchAccumulator, type SourceRecord } from '@gpu-meter/kit/kafka';

const record = (partition: number, offset: number): SourceRecord => ({
  topic: 't',
  partition,
  offset: String(offset),
  key: null,
  value: null,
});

describe('backoffDelay', () => {
  const policy = { initialMs: 100, maxMs: 5_000 };

  it('doubles per attempt, between half and all of the ceiling', () => {
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 0)).toBe(400);
    expect(backoffDelay(3, policy, () => 1)).toBe(800);
  });

  it('never exceeds the cap, even after very many attempts', () => {
    for (const attempt of [6, 10, 100, 5000]) {
      expect(backoffDelay(attempt, policy, () => 1)).toBe(5_000);
      expect(backoffDelay(attempt, policy, () => 0)).toBe(2_500);
    }
  });
});

describe('backoffCeiling', () => {
  it('waits 250 ms doubling to 10 s on reconnects (registry, watches), for any attempt count', () => {
    expect([0, 1, 2, 5, 6, 7, 5000].map((n) => backoffCeiling(n, RECONNECT_BACKOFF))).toEqual([
      250, 500, 1000, 8000, 10_000, 10_000, 10_000,
    ]);
  });
});

describe('BatchAccumulator', () => {
  it('is due by size once maxRows items are in', () => {
    const batch = new BatchAccumulator<number>(2, 10_000);
    batch.add({ value: 1, source: record(0, 0) }, 0);
    expect(batch.due(1)).toBe(false);
    batch.add({ value: 2, source: record(0, 1) }, 1);
    expect(batch.due(1)).toBe(true);
  });

  it('is due by time maxWaitMs after its oldest record, not its newest', () => {
    const batch = new BatchAccumulator<number>(100, 1_000);
    batch.add({ value: 1, source: record(0, 0) }, 0);
    batch.add({ value: 2, source: record(0, 1) }, 900);
    expect(batch.due(999)).toBe(false);
    expect(batch.due(1_000)).toBe(true);
  });

  it('commits the next offset per partition, including records that were skipped (dead-lettered)', () => {
    const batch = new BatchAccumulator<number>(100, 1_000);
    batch.add({ value: 1, source: record(0, 4) }, 0);
    batch.skip(record(0, 5), 0);
    batch.add({ value: 3, source: record(1, 9) }, 0);
    const taken = batch.take();
    expect(taken.items.map((item) => item.value)).toEqual([1, 3]);
    expect([...taken.offsets.values()]).toEqual([
      { topic: 't', partition: 0, offset: '6' },
      { topic: 't', partition: 1, offset: '10' },
    ]);
    expect(batch.empty).toBe(true);
  });

  it('a batch put back after a failed flush comes first, keeps the highest offsets and is due at once', () => {
    const batch = new BatchAccumulator<number>(100, 1_000);
    batch.add({ value: 1, source: record(0, 0) }, 0);
    const failed = batch.take();
    batch.add({ value: 2, source: record(0, 1) }, 50);
    batch.putBack(failed, 60);
    expect(batch.due(60)).toBe(true);
    const again = batch.take();
    expect(again.items.map((item) => item.value)).toEqual([1, 2]);
    expect([...again.offsets.values()]).toEqual([{ topic: 't', partition: 0, offset: '2' }]);
  });

  it('a dead-lettered record alone makes a batch (to commit past it)', () => {
    const batch = new BatchAccumulator<number>(100, 10);
    batch.skip(record(0, 7), 0);
    expect(batch.empty).toBe(false);
    expect(batch.due(10)).toBe(true);
  });
});
