import { describe, expect, it } from 'vitest';
import { describeTracked, PodStore, trackedSpan } from '@gpu-meter/kit';
import { a100Node, attribution, trainingPod } from './fixtures.js';

const START = Date.parse('2026-11-29T10:00:05Z');

describe('PodStore', () => {
  it('keeps a deleted pod with its last state until pruned', () => {
    const store = new PodStore();
    const pod = trainingPod();
    store.upsert(pod);
    const finished = trainingPod({
      metadata: { resourceVersion: '123999', deletionTimestamp: '2026-11-29T10:09:00Z' },
      status: {
        phase: 'Succeeded',
        containerStatuses: [{ name: 'c', state: { terminated: { finishedAt: '2026-11-29T10:08:30Z' } } }],
      },
    });
    store.remove(finished, START + 999_999);
    expect(store.size).toEqual({ live: 0, departed: 1 });
    expect(trackedSpan(store.all()[0]!)).toEqual({
      startMs: START,
      endMs: Date.parse('2026-11-29T10:08:30Z'),
    });
    store.prune(Date.parse('2026-11-29T10:08:30Z'));
    expect(store.size.departed).toBe(1);
    store.prune(Date.parse('2026-11-29T10:08:30Z') + 1);
    expect(store.size.departed).toBe(0);
  });

  it('ends a pod deleted while running at its deletionTimestamp, else when the delete was seen', () => {
    const store = new PodStore();
    store.upsert(trainingPod());
    store.remove(
      trainingPod({ metadata: { deletionTimestamp: '2026-11-29T10:05:00Z' } }),
      START + 10_000_000,
    );
    expect(trackedSpan(store.all()[0]!)?.endMs).toBe(Date.parse('2026-11-29T10:05:00Z'));

    const other = new PodStore();
    other.upsert(trainingPod());
    other.remove(trainingPod(), START + 60_000);
    expect(describeTracked(other.all()[0]!, new Map([['dgx-a100-01', a100Node]]), attribution).span).toEqual({
      startMs: START,
      endMs: START + 60_000,
    });
  });

  it('keeps the newer state when a stale delete arrives (relist after 410)', () => {
    const store = new PodStore();
    const ended = trainingPod({
      metadata: { resourceVersion: '200' },
      status: {
        phase: 'Failed',
        containerStatuses: [{ name: 'c', state: { terminated: { finishedAt: '2026-11-29T10:01:00Z' } } }],
      },
    });
    store.upsert(ended);
    store.remove(trainingPod({ metadata: { resourceVersion: '100' } }), START + 999_000);
    expect(trackedSpan(store.all()[0]!)?.endMs).toBe(Date.parse('2026-11-29T10:01:00Z'));
  });

  it('brings a pod back to life when it is seen again, and ignores pods without a uid', () => {
    const store = new PodStore();
    store.remove(trainingPod(), START + 1);
    store.upsert(trainingPod());
    expect(store.size).toEqual({ live: 1, departed: 0 });
    store.upsert({ metadata: { name: 'x' } });
    expect(store.size.live).toBe(1);
    expect(store.get(trainingPod().metadata!.uid!)?.deletedAtMs).toBeUndefined();
  });
});
