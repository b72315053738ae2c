import { describe, expect, it } from 'vitest';
import { describeTracked, PodStore, trackedSpan } from '@gpu-meter/kit/runai';
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

// Issue 18 points 1 and 2: a departed pod's billed end is never after the moment the collector learned it
// was gone, nor after its containers' real finish; a deletionTimestamp in the future is a deadline only.
describe('PodStore: the end of a departed pod', () => {
  const learnedAt = START + 120_000;

  it('does not bill a graceful delete to its future deletionTimestamp', () => {
    const store = new PodStore();
    store.upsert(trainingPod());
    // A 30 s grace: the deadline is after the moment the pod was seen gone (its removal found by a relist).
    const deadline = new Date(learnedAt + 18_000).toISOString();
    store.remove(
      trainingPod({ metadata: { deletionTimestamp: deadline, deletionGracePeriodSeconds: 30 } }),
      learnedAt,
    );
    expect(trackedSpan(store.all()[0]!)).toEqual({ startMs: START, endMs: learnedAt });
  });

  it('ends a deleted pod whose containers all terminated at their last finish, phase still Running', () => {
    const store = new PodStore();
    store.upsert(trainingPod());
    const finishedAt = START + 60_000;
    store.remove(
      trainingPod({
        metadata: { deletionTimestamp: new Date(START + 90_000).toISOString(), resourceVersion: '123460' },
        status: {
          phase: 'Running',
          containerStatuses: [
            {
              name: 'train-resnet',
              state: {
                terminated: {
                  startedAt: '2026-11-29T10:00:20Z',
                  finishedAt: new Date(finishedAt).toISOString(),
                },
              },
            },
            {
              name: 'sidecar',
              state: { terminated: { finishedAt: new Date(finishedAt - 1_000).toISOString() } },
            },
          ],
        },
      }),
      learnedAt,
    );
    expect(trackedSpan(store.all()[0]!)?.endMs).toBe(finishedAt);
  });

  it('keeps billing a deleted pod with a container still running to the earlier of deadline and learning', () => {
    const store = new PodStore();
    store.upsert(trainingPod());
    store.remove(
      trainingPod({
        metadata: { deletionTimestamp: new Date(learnedAt - 5_000).toISOString() },
        status: {
          containerStatuses: [
            {
              name: 'train-resnet',
              state: { terminated: { finishedAt: new Date(START + 1_000).toISOString() } },
            },
            { name: 'sidecar', state: { running: { startedAt: '2026-11-29T10:00:20Z' } } },
          ],
        },
      }),
      learnedAt,
    );
    expect(trackedSpan(store.all()[0]!)?.endMs).toBe(learnedAt - 5_000);
  });

  it('never ends a finished pod after the moment its removal was seen', () => {
    const store = new PodStore();
    const seen = START + 30_000;
    store.remove(
      trainingPod({
        status: {
          phase: 'Failed',
          // No container finish time: the condition's time is a guess, later than the removal was seen.
          containerStatuses: [],
          conditions: [
            { type: 'Ready', status: 'False', lastTransitionTime: new Date(seen + 40_000).toISOString() },
          ],
        },
      }),
      seen,
    );
    expect(trackedSpan(store.all()[0]!)?.endMs).toBe(seen);
  });

  it('keeps a pod deleted before it started running billed for nothing', () => {
    const store = new PodStore();
    store.remove(
      trainingPod({ metadata: { deletionTimestamp: new Date(START - 1_000).toISOString() } }),
      learnedAt,
    );
    expect(trackedSpan(store.all()[0]!)).toEqual({ startMs: START, endMs: START });
  });
});
